// Bundles one JavaScript component with the SDK into a single module, as
// componentize-js wants it; the host interfaces stay imports.
export default {
  input: process.env.CORRAL_JS_ENTRY,
  external: [/^corral:host\//, /^wasi:/],
  output: { file: process.env.CORRAL_JS_BUNDLE, format: 'esm' },
};
