//! `fabboot`: configure and inspect driver images (see [`fabboot_tool::cli`]).

fn main() -> std::process::ExitCode {
    fabboot_tool::cli::main()
}
