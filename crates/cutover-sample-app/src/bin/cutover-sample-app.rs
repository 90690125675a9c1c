//! Stand-alone entry point for the sample app, equivalent to `cutover sample-app`.

fn main() {
    std::process::exit(cutover_sample_app::main());
}
