//! Reading a task's log file, once or following it.
//!
//! Following tails the file every 100 ms until the task's exit is recorded,
//! then drains what is left and ends, so `logs --follow` of a finished task
//! terminates by itself.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::LogStream;

const CHUNK: usize = 64 * 1024;
const TAIL_INTERVAL: Duration = Duration::from_millis(100);

struct Tail {
    file: tokio::fs::File,
    follow: bool,
    /// The task's `exit.json`; once it exists the log can only shrink to its end.
    exit_marker: PathBuf,
    draining: bool,
    buf: Vec<u8>,
}

/// A stream over `file`; see the module documentation.
pub(crate) fn stream(file: tokio::fs::File, follow: bool, exit_marker: PathBuf) -> LogStream {
    let tail = Tail {
        file,
        follow,
        exit_marker,
        draining: false,
        buf: vec![0; CHUNK],
    };
    Box::pin(futures_util::stream::unfold(
        Some(tail),
        |state| async move {
            let mut tail = state?;
            loop {
                match tail.file.read(&mut tail.buf).await {
                    Ok(0) if !tail.follow || tail.draining => return None,
                    Ok(0) => {
                        if tokio::fs::try_exists(&tail.exit_marker)
                            .await
                            .unwrap_or(true)
                        {
                            // The writer is gone: one more read picks up its last bytes.
                            tail.draining = true;
                        } else {
                            tokio::time::sleep(TAIL_INTERVAL).await;
                        }
                    }
                    Ok(n) => {
                        let chunk = Bytes::copy_from_slice(&tail.buf[..n]);
                        return Some((Ok(chunk), Some(tail)));
                    }
                    Err(e) => return Some((Err(e), None)),
                }
            }
        },
    ))
}
