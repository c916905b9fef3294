//! Byte formats of the actor module: a recorded reply (what a resent
//! message id is answered with), and an exported actor (what
//! `ActorSystem::export` writes and `ActorSystem::import` reads).

use bytes::Bytes;

use crate::call::{CallStats, Outcome, Value};
use crate::capabilities::KvEntry;
use crate::convention::Data;
use crate::error::{Error, Result};

/// A reply: the value (tagged by kind), stdout, stderr. Logs and costs are
/// not kept: a replayed reply reports zero cost and `replayed`.
pub(crate) fn encode_reply(out: &Outcome<Data>) -> Vec<u8> {
    let mut w = Vec::new();
    match &out.value {
        Data::Bytes(b) => put(&mut w, 0, b),
        Data::Text(t) => put(&mut w, 1, t.as_bytes()),
        Data::Json(j) => put(&mut w, 2, j.to_string().as_bytes()),
        Data::Numbers(values) => {
            let mut n = Vec::with_capacity(values.len() * 9);
            for v in values {
                let (tag, bits) = match v {
                    Value::I32(x) => (0u8, *x as u32 as u64),
                    Value::I64(x) => (1, *x as u64),
                    Value::F32(x) => (2, x.to_bits() as u64),
                    Value::F64(x) => (3, x.to_bits()),
                };
                n.push(tag);
                n.extend_from_slice(&bits.to_le_bytes());
            }
            put(&mut w, 3, &n)
        }
        Data::None => put(&mut w, 4, &[]),
    }
    put(&mut w, 0, &out.stdout);
    put(&mut w, 0, &out.stderr);
    w
}

pub(crate) fn decode_reply(b: &[u8]) -> Result<Outcome<Data>> {
    let mut r = Reader::new(b, "recorded reply");
    let (tag, value) = r.tagged()?;
    let value = match tag {
        0 => Data::Bytes(Bytes::copy_from_slice(value)),
        1 => Data::Text(String::from_utf8(value.to_vec()).map_err(|_| r.bad("text"))?),
        2 => Data::Json(serde_json::from_slice(value).map_err(|_| r.bad("json"))?),
        3 => {
            let mut values = Vec::new();
            for c in value.chunks(9) {
                let [tag, bits @ ..] = c else {
                    return Err(r.bad("numbers"));
                };
                let bits = u64::from_le_bytes(bits.try_into().map_err(|_| r.bad("numbers"))?);
                values.push(match tag {
                    0 => Value::I32(bits as u32 as i32),
                    1 => Value::I64(bits as i64),
                    2 => Value::F32(f32::from_bits(bits as u32)),
                    3 => Value::F64(f64::from_bits(bits)),
                    _ => return Err(r.bad("number tag")),
                });
            }
            Data::Numbers(values)
        }
        4 => Data::None,
        _ => return Err(r.bad("value tag")),
    };
    let stdout = r.tagged()?.1.to_vec();
    let stderr = r.tagged()?.1.to_vec();
    r.end()?;
    Ok(Outcome {
        value,
        stdout,
        stderr,
        logs: Vec::new(),
        stats: CallStats {
            replayed: true,
            ..CallStats::default()
        },
    })
}

/// The magic of an exported actor.
const EXPORT_MAGIC: &[u8; 8] = b"\0WHACTOR";

/// An exported actor: magic, version 1, module digest, message count,
/// snapshot (empty for none), key-value entries, the embedder's meta
/// bytes, CRC-32.
pub(crate) struct Exported {
    pub(crate) meta: Vec<u8>,
    pub(crate) module: crate::Digest,
    pub(crate) messages: u64,
    pub(crate) snapshot: Option<Vec<u8>>,
    pub(crate) kv: Vec<KvEntry>,
}

impl Exported {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(EXPORT_MAGIC);
        w.push(1);
        w.extend_from_slice(self.module.as_bytes());
        w.extend_from_slice(&self.messages.to_le_bytes());
        put(&mut w, 0, self.snapshot.as_deref().unwrap_or_default());
        w.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for e in &self.kv {
            put(&mut w, 0, e.bucket.as_bytes());
            put(&mut w, 0, &e.key);
            put(&mut w, 0, &e.value);
        }
        put(&mut w, 0, &self.meta);
        let crc = crc32fast::hash(&w);
        w.extend_from_slice(&crc.to_le_bytes());
        w
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Exported> {
        let what = "exported actor";
        if b.len() < EXPORT_MAGIC.len() + 1 + 32 + 8 + 4 || !b.starts_with(EXPORT_MAGIC) {
            return Err(Error::corrupt(what, "not an actor exported by wasmhost"));
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(Error::corrupt(what, "checksum mismatch"));
        }
        let mut r = Reader::new(&body[EXPORT_MAGIC.len()..], what);
        if r.take(1)? != [1] {
            return Err(r.bad("version"));
        }
        let module = crate::Digest::from_bytes(r.take(32)?)?;
        let messages = r.u64()?;
        let snapshot = r.tagged()?.1;
        let mut kv = Vec::new();
        for _ in 0..r.u64()? {
            let bucket = String::from_utf8(r.tagged()?.1.to_vec()).map_err(|_| r.bad("bucket"))?;
            let key = r.tagged()?.1.to_vec();
            let value = r.tagged()?.1.to_vec();
            kv.push(KvEntry::new(bucket, key, value));
        }
        let meta = r.tagged()?.1.to_vec();
        r.end()?;
        Ok(Exported {
            meta,
            module,
            messages,
            snapshot: (!snapshot.is_empty()).then(|| snapshot.to_vec()),
            kv,
        })
    }
}

fn put(w: &mut Vec<u8>, tag: u8, b: &[u8]) {
    w.push(tag);
    w.extend_from_slice(&(b.len() as u64).to_le_bytes());
    w.extend_from_slice(b);
}

struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(rest: &'a [u8], what: &'static str) -> Self {
        Reader { rest, what }
    }

    fn bad(&self, part: &str) -> Error {
        Error::corrupt(self.what, format!("bad {part}"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(self.bad("length (truncated)"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| self.bad("number"))?,
        ))
    }

    fn tagged(&mut self) -> Result<(u8, &'a [u8])> {
        let tag = self.take(1)?[0];
        let n = usize::try_from(self.u64()?).map_err(|_| self.bad("length"))?;
        Ok((tag, self.take(n)?))
    }

    fn end(&self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.bad("trailing bytes"))
        }
    }
}
