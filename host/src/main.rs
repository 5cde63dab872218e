//! The `corral` command: the local server, the Lambda function and the
//! developer's commands (see the library's `cli` module).

fn main() -> anyhow::Result<()> {
    corral::cli::main()
}
