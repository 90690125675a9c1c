//! Checks buildspec files given as arguments and prints their diagnostics,
//! compiler style: `cargo run -p cutover-build --example check_buildspec -- buildspec.yml`.

fn main() {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{path}: {e}");
                failed = true;
                continue;
            }
        };
        match cutover_build::parse_buildspec(&path, &text) {
            Ok(parsed) => {
                for w in &parsed.warnings {
                    println!("{}", w.with_severity());
                }
            }
            Err(e) => {
                for d in e.warnings.iter().chain(&e.diagnostics) {
                    println!("{}", d.with_severity());
                }
                failed = true;
            }
        }
    }
    std::process::exit(i32::from(failed));
}
