//! Where a chunked message body ends (RFC 9112 §7.1), found without decoding it.
//!
//! The HTTP/1 fast path (`crate::h1::fast`) passes a target's chunked response body to the
//! client byte for byte, framing included, and only needs to know where it ends: after the last
//! chunk (size 0), its trailer fields and the final empty line. Trailer fields are not passed
//! on (hyper's HTTP/1 server does not send them to a client that did not ask with `TE:
//! trailers`, and the fast path takes no request with `TE`): [`Fed::pass`] stops before them
//! and the caller ends the body with the empty line itself. The grammar is read strictly, as
//! hyper's decoder reads it: CRLF line ends only (a bare LF is an error), at most 16 hex digits
//! of size, only whitespace, `;` or CR after them, chunk extensions and trailers bounded in
//! length. A body that breaks it ends the exchange: the client's connection is closed, the
//! target's is not reused.

/// Longest chunk extension accepted (bytes after the size, up to its CRLF).
const MAX_EXTENSION: usize = 4096;
/// Longest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;

/// Why a chunked body is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChunkError {
    /// A chunk size that is empty, not hexadecimal, above 16 digits, or followed by anything
    /// but whitespace, `;` or CR.
    #[error("invalid chunk size")]
    Size,
    /// A missing CR or LF where the grammar needs one.
    #[error("invalid chunk framing")]
    Framing,
    /// A chunk extension or the trailer section is too long.
    #[error("chunk extension or trailers too long")]
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk size's hex digits (`digits` so far).
    Size { digits: u8 },
    /// Whitespace after the size, before `;` or CR.
    SizeWhitespace,
    /// After `;`, up to CR: an extension (`name=value`), `len` bytes so far.
    Extension { len: usize },
    /// The LF ending a size line.
    SizeLf,
    /// Inside a chunk's data: `left` bytes to go.
    Data { left: u64 },
    /// The CR after a chunk's data.
    DataCr,
    /// The LF after a chunk's data.
    DataLf,
    /// At the start of a trailer line, or of the final empty line.
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// The LF ending a trailer line.
    TrailerLf,
    /// The LF of the final empty line.
    EndLf,
    /// The body has ended.
    Done,
}

/// What one [`ChunkedEnd::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fed {
    /// How many bytes at the start of the piece to pass on: all of it, or up to the trailer
    /// section (the last chunk's size line included).
    pub(crate) pass: usize,
    /// Where the body ends within the piece, if it does: the caller then sends the final empty
    /// line itself, and what follows `end` is not part of the body.
    pub(crate) end: Option<usize>,
}

/// Follows a chunked body fed in pieces.
#[derive(Debug)]
pub(crate) struct ChunkedEnd {
    state: State,
    /// The size being read, then the size of the current chunk.
    size: u64,
    /// Trailer bytes so far.
    trailers: usize,
}

impl Default for ChunkedEnd {
    fn default() -> Self {
        ChunkedEnd {
            state: State::Size { digits: 0 },
            size: 0,
            trailers: 0,
        }
    }
}

impl ChunkedEnd {
    /// Reads the next piece of the body (see [`Fed`]).
    pub(crate) fn feed(&mut self, buf: &[u8]) -> Result<Fed, ChunkError> {
        let mut pass = if self.in_trailers() { 0 } else { buf.len() };
        let end = self.scan(buf, &mut pass)?;
        Ok(Fed {
            pass: end.map_or(pass, |e| pass.min(e)),
            end,
        })
    }

    /// Whether the last chunk's size line has been read (trailers or the end come next).
    fn in_trailers(&self) -> bool {
        matches!(
            self.state,
            State::TrailerStart | State::Trailer | State::TrailerLf | State::EndLf | State::Done
        )
    }

    /// Runs the state machine over `buf`: where the body ends in it, if it does; `pass` is
    /// lowered to where the trailer section starts when it starts in `buf`.
    fn scan(&mut self, buf: &[u8], pass: &mut usize) -> Result<Option<usize>, ChunkError> {
        let mut i = 0;
        while i < buf.len() {
            if let State::Data { left } = self.state {
                let take = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(buf.len() - i);
                i += take;
                let left = left - take as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { left }
                };
                continue;
            }
            let b = buf[i];
            i += 1;
            self.state = match self.state {
                State::Size { digits } => match (b as char).to_digit(16) {
                    Some(d) if digits < 16 => {
                        self.size = (self.size << 4) | u64::from(d);
                        State::Size { digits: digits + 1 }
                    }
                    Some(_) => return Err(ChunkError::Size),
                    None if digits == 0 => return Err(ChunkError::Size),
                    None => self.after_size(b)?,
                },
                State::SizeWhitespace => self.after_size(b)?,
                State::Extension { len } => match b {
                    b'\r' => State::SizeLf,
                    b'\n' => return Err(ChunkError::Framing),
                    _ if len >= MAX_EXTENSION => return Err(ChunkError::TooLong),
                    _ => State::Extension { len: len + 1 },
                },
                State::SizeLf if b == b'\n' => {
                    if self.size == 0 {
                        *pass = i;
                        State::TrailerStart
                    } else {
                        State::Data {
                            left: std::mem::take(&mut self.size),
                        }
                    }
                }
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size { digits: 0 },
                State::TrailerStart if b == b'\r' => State::EndLf,
                State::TrailerStart | State::Trailer => {
                    self.trailers += 1;
                    match b {
                        _ if self.trailers > MAX_TRAILERS => return Err(ChunkError::TooLong),
                        b'\r' => State::TrailerLf,
                        b'\n' => return Err(ChunkError::Framing),
                        _ => State::Trailer,
                    }
                }
                State::TrailerLf if b == b'\n' => State::TrailerStart,
                State::EndLf if b == b'\n' => {
                    self.state = State::Done;
                    return Ok(Some(i));
                }
                State::Done => return Ok(Some(i - 1)),
                State::SizeLf | State::DataCr | State::DataLf | State::TrailerLf | State::EndLf => {
                    return Err(ChunkError::Framing);
                }
                State::Data { .. } => unreachable!("handled above"),
            };
        }
        Ok((self.state == State::Done).then_some(i))
    }

    /// The state after a size's digits (or whitespace after them) on reading `b`.
    fn after_size(&self, b: u8) -> Result<State, ChunkError> {
        match b {
            b' ' | b'\t' => Ok(State::SizeWhitespace),
            b';' => Ok(State::Extension { len: 1 }),
            b'\r' => Ok(State::SizeLf),
            _ => Err(ChunkError::Size),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `body` split at `cuts`: what a client receives (the passed bytes, then the final
    /// empty line) and the end offset within the whole, if found.
    fn passed(body: &[u8], cuts: &[usize]) -> Result<(Vec<u8>, Option<usize>), ChunkError> {
        let mut c = ChunkedEnd::default();
        let mut at = 0;
        let mut out = Vec::new();
        let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&x| x < body.len()).collect();
        bounds.sort_unstable();
        bounds.push(body.len());
        for b in bounds {
            if b < at {
                continue;
            }
            let piece = &body[at..b];
            let fed = c.feed(piece)?;
            out.extend_from_slice(&piece[..fed.pass]);
            if let Some(n) = fed.end {
                out.extend_from_slice(b"\r\n");
                return Ok((out, Some(at + n)));
            }
            at = b;
        }
        Ok((out, None))
    }

    /// The end offset of `body` split at `cuts`, if found.
    fn end_of(body: &[u8], cuts: &[usize]) -> Result<Option<usize>, ChunkError> {
        Ok(passed(body, cuts)?.1)
    }

    fn encode(chunks: &[Vec<u8>], ext: bool, trailers: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            out.extend_from_slice(format!("{:X}", c.len()).as_bytes());
            if ext {
                out.extend_from_slice(b" ;name=\"v\"");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        for (k, v) in trailers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    #[test]
    fn finds_the_end_and_leaves_what_follows() {
        let mut body =
            b"5 \t\r\nhello\r\n1a;x=y\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n".to_vec();
        let len = body.len();
        body.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(end_of(&body, &[]), Ok(Some(len)));
        for cut in 0..len {
            assert_eq!(passed(&body, &[cut]), Ok((body[..len].to_vec(), Some(len))));
        }
        let every: Vec<usize> = (0..body.len()).collect();
        assert_eq!(end_of(&body, &every), Ok(Some(len)));
    }

    #[test]
    fn trailers_end_the_body_and_are_not_passed_on() {
        let body = encode(
            &[b"abc".to_vec()],
            false,
            &[("grpc-status", "0"), ("x", "y")],
        );
        assert_eq!(end_of(&body, &[]), Ok(Some(body.len())));
        assert_eq!(end_of(&body[..body.len() - 1], &[]), Ok(None));
        let without = encode(&[b"abc".to_vec()], false, &[]);
        for cut in 0..body.len() {
            assert_eq!(passed(&body, &[cut]).unwrap().0, without, "cut at {cut}");
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for (bad, err) in [
            (&b"\r\n"[..], ChunkError::Size),
            (b"g\r\n", ChunkError::Size),
            (b"5\nhello", ChunkError::Size),
            (b"5 junk\r\n", ChunkError::Size),
            (b"11111111111111111\r\n", ChunkError::Size),
            (b"5\r\nhelloX", ChunkError::Framing),
            (b"5\r\nhello\rX", ChunkError::Framing),
            (b"5;a\nb\r\n", ChunkError::Framing),
            (b"0\r\nx: y\n", ChunkError::Framing),
            (b"0\r\n\rX", ChunkError::Framing),
        ] {
            assert_eq!(
                end_of(bad, &[]),
                Err(err),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long_ext = [b"1;".as_slice(), &[b'a'; MAX_EXTENSION + 1]].concat();
        assert_eq!(end_of(&long_ext, &[]), Err(ChunkError::TooLong));
        let long_trailer = [b"0\r\nx: ".as_slice(), &[b'a'; MAX_TRAILERS + 1]].concat();
        assert_eq!(end_of(&long_trailer, &[]), Err(ChunkError::TooLong));
    }

    #[test]
    fn the_largest_size_does_not_overflow() {
        let mut c = ChunkedEnd::default();
        assert_eq!(
            c.feed(b"ffffffffffffffff\r\nab"),
            Ok(Fed {
                pass: 20,
                end: None
            })
        );
        assert_eq!(c.state, State::Data { left: u64::MAX - 2 });
    }

    proptest! {
        #[test]
        fn any_encoding_split_anywhere_ends_where_it_ends(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            ext in any::<bool>(),
            trailer in any::<bool>(),
            cuts in proptest::collection::vec(0usize..3000, 0..12),
            tail in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let trailers: &[(&str, &str)] = if trailer { &[("grpc-status", "0")] } else { &[] };
            let mut body = encode(&chunks, ext, trailers);
            let len = body.len();
            body.extend_from_slice(&tail);
            let (out, end) = passed(&body, &cuts).unwrap();
            prop_assert_eq!(end, Some(len));
            prop_assert_eq!(out, encode(&chunks, ext, &[]));
        }
    }
}
