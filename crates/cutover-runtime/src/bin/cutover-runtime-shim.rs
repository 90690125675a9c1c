//! The per-task shim as a stand-alone program: `cutover-runtime-shim --task-dir DIR`.

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let task_dir = match (args.next(), args.next(), args.next()) {
        (Some(flag), Some(dir), None) if flag == "--task-dir" => PathBuf::from(dir),
        _ => {
            eprintln!("usage: cutover-runtime-shim --task-dir DIR");
            std::process::exit(2);
        }
    };
    std::process::exit(cutover_runtime::shim_main(task_dir));
}
