//! The end-to-end tests live in tests/all/.
