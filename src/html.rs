//! The few small HTML pages we show people (errors, 403, sign-out notice). Every
//! value placed in a page goes through [`escape`]. No I/O, no actix.

/// Escapes text for an HTML body or a double-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
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
    out
}

/// A minimal page: a title, one sentence, and optionally one link.
pub fn message_page(title: &str, message: &str, link: Option<(&str, &str)>) -> String {
    let link = link
        .map(|(href, text)| format!("<p><a href=\"{}\">{}</a></p>", escape(href), escape(text)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{message}</p>{link}</body></html>\n",
        title = escape(title),
        message = escape(message),
    )
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
}
