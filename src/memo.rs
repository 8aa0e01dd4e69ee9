//! Small per-thread memos of pure functions of text (the forwarded URL's
//! parse, a route's allow-lists): a fixed table of slots, one chosen per input
//! by a keyed fast hash (foldhash, a seed per table), each answering only for
//! an input equal to its own in every byte. A miss computes the function as
//! before; only successes are kept, and only inputs up to a length cap, so a
//! table never holds more than `slots × cap` bytes of input whatever clients
//! send. Owns only its table. Must NOT memoize a function whose answer depends
//! on anything but its input text.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::thread::LocalKey;

/// A fixed table of the last answers, by exact input.
pub struct Memo<V> {
    hasher: foldhash::fast::RandomState,
    slots: Box<[Option<Kept<V>>]>,
    max_input: usize,
    /// Where an input given in parts is put together (kept: no allocation per call).
    joined: String,
}

/// An input and the answer it was given.
struct Kept<V> {
    input: Box<str>,
    value: V,
}

impl<V: Clone> Memo<V> {
    /// A table of `slots` slots (at least one) keeping inputs of at most
    /// `max_input` bytes.
    pub fn new(slots: usize, max_input: usize) -> Memo<V> {
        Memo {
            hasher: foldhash::fast::RandomState::default(),
            slots: (0..slots.max(1)).map(|_| None).collect(),
            max_input,
            joined: String::new(),
        }
    }

    /// `make(input)`, or the answer it gave for this very input before.
    /// `make` must be a pure function of `input`.
    pub fn get_or_make<E>(
        &mut self,
        input: &str,
        make: impl FnOnce(&str) -> Result<V, E>,
    ) -> Result<V, E> {
        if input.len() > self.max_input {
            return make(input);
        }
        // The remainder is below the slot count, which is a `usize`.
        let index = (self.hasher.hash_one(input) % self.slots.len() as u64) as usize;
        if let Some(kept) = &self.slots[index] {
            if *kept.input == *input {
                return Ok(kept.value.clone());
            }
        }
        let value = make(input)?;
        self.slots[index] = Some(Kept {
            input: input.into(),
            value: value.clone(),
        });
        Ok(value)
    }

    /// [`get_or_make`](Self::get_or_make) for the input `parts` joined.
    pub fn get_or_make_joined<E>(
        &mut self,
        parts: &[&str],
        make: impl FnOnce(&str) -> Result<V, E>,
    ) -> Result<V, E> {
        let mut joined = std::mem::take(&mut self.joined);
        joined.clear();
        parts.iter().for_each(|part| joined.push_str(part));
        let answer = self.get_or_make(&joined, make);
        if joined.capacity() <= self.max_input {
            self.joined = joined;
        }
        answer
    }
}

/// The thread's memo `memo`, asked for `parts` joined; `make` alone when the
/// memo cannot be reached (the thread is ending, or the memo is in use).
pub fn per_thread<V: Clone, E>(
    memo: &'static LocalKey<RefCell<Memo<V>>>,
    parts: &[&str],
    make: impl Fn(&str) -> Result<V, E>,
) -> Result<V, E> {
    let answered = memo.try_with(|memo| {
        let mut memo = memo.try_borrow_mut().ok()?;
        Some(match parts {
            [one] => memo.get_or_make(one, &make),
            _ => memo.get_or_make_joined(parts, &make),
        })
    });
    match answered {
        Ok(Some(answer)) => answer,
        _ => make(&parts.concat()),
    }
}

#[cfg(test)]
mod tests;
