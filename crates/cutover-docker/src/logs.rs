//! The engine's log and exec output streams.
//!
//! Without a TTY the engine multiplexes stdout and stderr into one stream of
//! frames, each with an 8-byte header: the stream (0 stdin, 1 stdout,
//! 2 stderr), three zero bytes, then the payload length as a big-endian
//! `u32`. [`Demuxer`] takes the frames apart however the bytes are chunked.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

/// Which output a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// Standard output (and stdin echoes).
    Stdout,
    /// Standard error.
    Stderr,
}

/// Splits a multiplexed stream into frames.
#[derive(Debug, Default)]
pub(crate) struct Demuxer {
    buf: BytesMut,
}

const HEADER: usize = 8;

impl Demuxer {
    /// Adds bytes read from the engine.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete frame, if one is buffered.
    pub(crate) fn next_frame(&mut self) -> Option<(Output, Bytes)> {
        if self.buf.len() < HEADER {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < HEADER + len {
            return None;
        }
        let output = if self.buf[0] == 2 {
            Output::Stderr
        } else {
            Output::Stdout
        };
        self.buf.advance(HEADER);
        Some((output, self.buf.split_to(len).freeze()))
    }

    /// Bytes left over that do not make a whole frame.
    pub(crate) fn remainder(&self) -> usize {
        self.buf.len()
    }
}

/// The payloads of a multiplexed stream, stdout and stderr interleaved as
/// the engine sent them.
pub(crate) fn demultiplex<S>(body: S) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
{
    futures_util::stream::unfold(
        (body, Demuxer::default(), false),
        |(mut body, mut demuxer, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some((_, payload)) = demuxer.next_frame() {
                    return Some((Ok(payload), (body, demuxer, false)));
                }
                match body.next().await {
                    Some(Ok(chunk)) => demuxer.push(&chunk),
                    Some(Err(e)) => return Some((Err(e), (body, demuxer, true))),
                    None => {
                        if demuxer.remainder() > 0 {
                            tracing::debug!(
                                bytes = demuxer.remainder(),
                                "log stream ended inside a frame"
                            );
                        }
                        return None;
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![stream, 0, 0, 0];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn frames_split_at_any_byte() {
        let mut all = frame(1, b"hello\n");
        all.extend(frame(2, b"oops\n"));
        all.extend(frame(1, b""));
        all.extend(frame(1, b"bye\n"));
        for split in 0..all.len() {
            let mut d = Demuxer::default();
            let mut got = Vec::new();
            for part in [&all[..split], &all[split..]] {
                d.push(part);
                while let Some(f) = d.next_frame() {
                    got.push(f);
                }
            }
            assert_eq!(
                got,
                vec![
                    (Output::Stdout, Bytes::from_static(b"hello\n")),
                    (Output::Stderr, Bytes::from_static(b"oops\n")),
                    (Output::Stdout, Bytes::new()),
                    (Output::Stdout, Bytes::from_static(b"bye\n")),
                ],
                "split at {split}"
            );
            assert_eq!(d.remainder(), 0);
        }
    }

    #[tokio::test]
    async fn the_stream_yields_payloads_in_order() {
        let mut bytes = frame(1, b"a");
        bytes.extend(frame(2, b"b"));
        bytes.extend(&frame(1, b"c")[..5]);
        let chunks: Vec<std::io::Result<Bytes>> = bytes
            .chunks(3)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let out: Vec<Bytes> = demultiplex(futures_util::stream::iter(chunks))
            .map(|r| r.unwrap())
            .collect()
            .await;
        assert_eq!(
            out,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
    }
}
