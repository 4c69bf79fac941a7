//! The `geartopo` binary: everything lives in the library; this only exits.
fn main() {
    std::process::exit(geartopo::cli::main());
}
