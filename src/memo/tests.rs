use std::cell::{Cell, RefCell};

use super::*;

/// A pure function that counts its calls.
fn counted(calls: &Cell<usize>) -> impl Fn(&str) -> Result<String, String> + '_ {
    move |input: &str| {
        calls.set(calls.get() + 1);
        if input.contains('!') {
            Err(format!("refused {input}"))
        } else {
            Ok(input.to_uppercase())
        }
    }
}

#[test]
fn an_input_seen_before_is_answered_without_computing_again() {
    let calls = Cell::new(0);
    let mut memo = Memo::new(8, 64);
    assert_eq!(memo.get_or_make("abc", counted(&calls)).unwrap(), "ABC");
    assert_eq!(memo.get_or_make("abc", counted(&calls)).unwrap(), "ABC");
    assert_eq!(calls.get(), 1);
}

#[test]
fn a_slot_answers_only_for_its_own_input_byte_for_byte() {
    let calls = Cell::new(0);
    // One slot: every input shares it.
    let mut memo = Memo::new(1, 64);
    let input = "https://app.example.com/page";
    memo.get_or_make(input, counted(&calls)).unwrap();
    for i in 0..input.len() {
        let mut other = input.as_bytes().to_vec();
        other[i] ^= 1;
        let other = String::from_utf8(other).unwrap();
        let got = memo.get_or_make(&other, counted(&calls)).unwrap();
        assert_eq!(got, other.to_uppercase(), "byte {i}");
        assert_eq!(
            memo.get_or_make(input, counted(&calls)).unwrap(),
            input.to_uppercase()
        );
    }
    for other in [&input[..input.len() - 1], &format!("{input}e"), ""] {
        assert_eq!(
            memo.get_or_make(other, counted(&calls)).unwrap(),
            other.to_uppercase()
        );
    }
    assert_eq!(calls.get(), 1 + 2 * input.len() + 3);
}

#[test]
fn refusals_and_over_long_inputs_are_computed_every_time() {
    let calls = Cell::new(0);
    let mut memo = Memo::new(8, 8);
    for _ in 0..3 {
        assert_eq!(
            memo.get_or_make("no!", counted(&calls)).unwrap_err(),
            "refused no!"
        );
        assert_eq!(
            memo.get_or_make("123456789", counted(&calls)).unwrap(),
            "123456789"
        );
        assert_eq!(
            memo.get_or_make("12345678", counted(&calls)).unwrap(),
            "12345678"
        );
    }
    assert_eq!(calls.get(), 3 + 3 + 1);
    assert!(memo
        .slots
        .iter()
        .flatten()
        .all(|kept| kept.input.len() <= 8));
}

#[test]
fn the_table_never_holds_more_than_its_slots() {
    let calls = Cell::new(0);
    let mut memo = Memo::new(4, 16);
    for i in 0..1000 {
        memo.get_or_make(&format!("input {i}"), counted(&calls))
            .unwrap();
    }
    assert_eq!(memo.slots.len(), 4);
    assert!(memo.slots.iter().flatten().count() <= 4);
    // The scratch for joined parts never grows past the cap either.
    let long = "x".repeat(100);
    memo.get_or_make_joined(&["a", &long], counted(&calls))
        .unwrap();
    assert!(memo.joined.capacity() <= 16);
}

#[test]
fn parts_are_answered_as_their_joined_text() {
    let calls = Cell::new(0);
    let mut memo = Memo::new(8, 64);
    let joined = memo
        .get_or_make_joined(&["https", "://", "app.example.com", "/p"], counted(&calls))
        .unwrap();
    assert_eq!(joined, "HTTPS://APP.EXAMPLE.COM/P");
    assert_eq!(
        memo.get_or_make("https://app.example.com/p", counted(&calls))
            .unwrap(),
        joined
    );
    assert_eq!(calls.get(), 1);
}

thread_local! {
    static MEMO: RefCell<Memo<String>> = RefCell::new(Memo::new(8, 64));
}

#[test]
fn a_memo_in_use_is_passed_by_not_waited_for() {
    let calls = Cell::new(0);
    assert_eq!(
        per_thread(&MEMO, &["a", "b"], counted(&calls)).unwrap(),
        "AB"
    );
    assert_eq!(per_thread(&MEMO, &["ab"], counted(&calls)).unwrap(), "AB");
    assert_eq!(calls.get(), 1);
    let inner = MEMO.with(|memo| {
        let _held = memo.borrow_mut();
        per_thread(&MEMO, &["ab"], counted(&calls))
    });
    assert_eq!(inner.unwrap(), "AB");
    assert_eq!(calls.get(), 2, "computed while the memo was held");
}
