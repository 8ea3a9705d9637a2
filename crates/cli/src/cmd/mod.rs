//! One module per subcommand: its flags, and the code that runs it.

pub(crate) mod bench;
pub(crate) mod completions;
pub(crate) mod connect;
pub(crate) mod demo;
pub(crate) mod exec;
pub(crate) mod keygen;
pub(crate) mod listen;
pub(crate) mod send;
