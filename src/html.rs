//! The few small HTML pages we show people (errors, 403, sign-out notice). Every
//! value placed in a page goes through [`escape`]. No I/O, no actix.

use std::fmt::{self, Write as _};

/// Escapes text for an HTML body or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// [`escape`], appended to `out`.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// A `fmt::Write` that escapes what is written: a message made with
/// `format_args!` goes into the page without a copy of its own.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape_into(self.0, text);
        Ok(())
    }
}

/// The page's own markup, for its buffer's first size.
const MARKUP: usize = 160;

/// A minimal page: a title, one sentence, and optionally one link, built in
/// one buffer.
pub fn message_page(title: &str, message: impl fmt::Display, link: Option<(&str, &str)>) -> String {
    let link_len = link.map_or(0, |(href, text)| href.len() + text.len());
    let mut page = String::with_capacity(MARKUP + 2 * title.len() + link_len);
    page.push_str("<!doctype html><html><head><meta charset=\"utf-8\"><title>");
    escape_into(&mut page, title);
    page.push_str("</title></head><body><h1>");
    escape_into(&mut page, title);
    page.push_str("</h1><p>");
    // Writing into a String cannot fail; a Display that fails leaves its
    // text cut, which is all it could have meant.
    let _ = write!(Escaping(&mut page), "{message}");
    page.push_str("</p>");
    if let Some((href, text)) = link {
        page.push_str("<p><a href=\"");
        escape_into(&mut page, href);
        page.push_str("\">");
        escape_into(&mut page, text);
        page.push_str("</a></p>");
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn message_page_escapes_every_value() {
        let page = message_page("<t>", "<m>", Some(("/x?a=1&b=\"2\"", "<l>")));
        assert!(!page.contains("<t>") && !page.contains("<m>") && !page.contains("<l>"));
        assert!(page.contains("href=\"/x?a=1&amp;b=&quot;2&quot;\""));
    }

    #[test]
    fn a_page_is_the_same_markup_whatever_its_message_is_made_of() {
        let want = "<!doctype html><html><head><meta charset=\"utf-8\"><title>A &amp; B</title>\
                    </head><body><h1>A &amp; B</h1><p>Hello &lt;b&gt;, x&#39;s</p><p><a \
                    href=\"/s?a=1&amp;b=2\">Go &quot;on&quot;</a></p></body></html>\n";
        let link = Some(("/s?a=1&b=2", "Go \"on\""));
        assert_eq!(message_page("A & B", "Hello <b>, x's", link), want);
        let who = "<b>";
        assert_eq!(
            message_page("A & B", format_args!("Hello {who}, x's"), link),
            want
        );
        assert_eq!(
            message_page("T", "m", None),
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>T</title></head>\
             <body><h1>T</h1><p>m</p></body></html>\n"
        );
    }
}
