//! One module per subcommand: its flags and the call into the library.

pub mod backtest;
pub mod bench;
pub mod cache;
pub mod compare;
pub mod forecast;
pub mod init_random;
pub mod inspect;
pub mod serve;
