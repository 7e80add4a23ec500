//! Keeps the configured credentials out of everything the clients show. A backend, a gateway
//! in front of it or a token endpoint may answer an error with the request it received —
//! `Authorization` header, custom headers, the OAuth2 form — and whatever the clients put in an
//! error reaches the console's API, its pages and its logs. So every piece of a response
//! (body, status message, header) goes through [`Secrets::excerpt`] before it is shown: each
//! secret the client has sent, in every encoding an echo may use, is replaced, markup is
//! reduced to its text, and the result is cut to [`EXCERPT_BYTES`].

use std::sync::{Arc, Mutex};

use base64::Engine as _;

/// The longest excerpt of a backend's answer in a message, in bytes.
pub const EXCERPT_BYTES: usize = 512;
/// How much of an answer is looked at to make the excerpt (markup shrinks to less text).
const WINDOW_BYTES: usize = 16 * 1024;
/// Distinct secrets remembered per client: credentials read from files change when they are
/// rotated, and the old values stay hidden until this many newer ones have been seen.
const MAX_SECRETS: usize = 64;
/// What a secret is replaced with.
const REDACTED: &str = "[redacted]";

/// The secrets a client sends, shared by its request paths and its error paths.
#[derive(Debug, Clone, Default)]
pub struct Secrets(Arc<Mutex<Vec<Secret>>>);

#[derive(Debug)]
struct Secret {
    raw: String,
    /// The raw value and its encodings, longest first.
    forms: Vec<String>,
}

/// `secret` as an echo may write it: as sent, form- or percent-encoded (an echoed body or
/// URL), JSON-escaped (an echo as JSON), HTML-escaped (an error page).
fn forms(secret: &str) -> Vec<String> {
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(secret)
        .to_string();
    let html = secret
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let mut forms = vec![
        secret.to_string(),
        form.replace('+', "%20"),
        form,
        json.replace('/', "\\/"),
        json,
        html.replace('"', "&quot;").replace('\'', "&#39;"),
        html.replace('"', "&#34;").replace('\'', "&#39;"),
        html.replace('"', "&#34;").replace('\'', "&#x27;"),
    ];
    forms.retain(|f| !f.is_empty());
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

impl Secrets {
    /// Remembers `secret` (nothing when empty).
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut secrets = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = secrets.iter().position(|s| s.raw == secret) {
            // Known: it becomes the most recent, the last to be forgotten.
            let known = secrets.remove(at);
            secrets.push(known);
            return;
        }
        if secrets.len() >= MAX_SECRETS {
            secrets.remove(0);
        }
        secrets.push(Secret {
            raw: secret.to_string(),
            forms: forms(secret),
        });
    }

    /// Remembers a Basic pair: the password, and `user:password` as sent (base64).
    pub fn add_basic(&self, user: &str, password: &str) {
        self.add(password);
        self.add(&base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
    }

    /// `text` with every form of every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let secrets = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all: Vec<&str> = secrets
            .iter()
            .flat_map(|s| s.forms.iter().map(String::as_str))
            .collect();
        // Longest first, so a secret inside a longer one (a password inside its pair) does
        // not break the longer one's match.
        all.sort_by_key(|f| std::cmp::Reverse(f.len()));
        let mut out = text.to_string();
        for form in all {
            if out.contains(form) {
                out = out.replace(form, REDACTED);
            }
        }
        out
    }

    /// The longest form of any secret, in bytes.
    fn longest(&self) -> usize {
        let secrets = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        secrets
            .iter()
            .filter_map(|s| s.forms.first())
            .map(String::len)
            .max()
            .unwrap_or(0)
    }

    /// A piece of a backend's answer (a body, a status message, a header) fit for a message:
    /// secrets replaced, markup reduced to its text, one line, at most [`EXCERPT_BYTES`].
    pub fn excerpt(&self, bytes: &[u8]) -> String {
        let window = bytes.get(..WINDOW_BYTES).unwrap_or(bytes);
        let cut = window.len() < bytes.len();
        let mut text = self.redact(&String::from_utf8_lossy(window));
        if cut {
            // A secret that straddles the window's end was not replaced: its start is
            // within the last `longest` bytes, which are dropped.
            let keep = text.len().saturating_sub(self.longest());
            text.truncate(floor_char_boundary(&text, keep));
        }
        let text = if looks_like_markup(&text) {
            markup_text(&text)
        } else {
            text
        };
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        // Joining lines may have made a secret whole again.
        let line = self.redact(&line);
        if line.is_empty() {
            return "(empty body)".to_string();
        }
        if line.len() <= EXCERPT_BYTES {
            return line;
        }
        let end = floor_char_boundary(&line, EXCERPT_BYTES);
        format!("{}…", line.get(..end).unwrap_or(""))
    }
}

/// The largest char boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut end = at.min(text.len());
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    end
}

fn looks_like_markup(text: &str) -> bool {
    text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .starts_with('<')
}

/// The text of an HTML or XML answer: tags dropped, with the content of `script` and
/// `style` elements; entities are left as they are (the text is shown escaped).
fn markup_text(markup: &str) -> String {
    let mut out = String::with_capacity(markup.len());
    let mut rest = markup;
    while let Some(open) = rest.find('<') {
        out.push_str(rest.get(..open).unwrap_or(""));
        out.push(' ');
        let tag = rest.get(open..).unwrap_or("");
        let name: String = tag
            .chars()
            .skip(1)
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let after_tag = tag
            .find('>')
            .map_or("", |close| tag.get(close.saturating_add(1)..).unwrap_or(""));
        rest = if name == "script" || name == "style" {
            let closing = format!("</{name}");
            match after_tag.to_ascii_lowercase().find(&closing) {
                Some(end) => {
                    let from_closing = after_tag.get(end..).unwrap_or("");
                    from_closing
                        .find('>')
                        .and_then(|close| from_closing.get(close.saturating_add(1)..))
                        .unwrap_or("")
                }
                None => "",
            }
        } else {
            after_tag
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_replaced() {
        let secrets = Secrets::default();
        secrets.add_basic("kiali", "p&ss \"w\"/<x>");
        let shown = secrets.redact(
            "raw p&ss \"w\"/<x> form p%26ss+%22w%22%2F%3Cx%3E json p&ss \\\"w\\\"/<x> \
             html p&amp;ss &quot;w&quot;/&lt;x&gt; html2 p&amp;ss &#34;w&#34;/&lt;x&gt; \
             basic a2lhbGk6cCZzcyAidyIvPHg+",
        );
        assert!(!shown.contains("ss"), "{shown}");
        assert!(!shown.contains("a2lhbGk6"), "{shown}");
    }

    #[test]
    fn a_secret_cut_by_the_window_is_dropped_not_shown() {
        let secrets = Secrets::default();
        secrets.add("topsecretvalue");
        // Markup that shrinks to nothing, `len` bytes of it, so the window's end is in the
        // excerpt.
        let filler = |len: usize| {
            let mut body = String::from("<i>");
            while body.len() + 7 <= len {
                body.push_str("<b></b>");
            }
            while body.len() < len {
                body.push(' ');
            }
            body
        };
        let body = filler(WINDOW_BYTES - 6) + "topsecretvalue and more";
        assert_eq!(secrets.excerpt(body.as_bytes()), "(empty body)");
        let body = filler(WINDOW_BYTES - 20) + "visible";
        assert_eq!(secrets.excerpt(body.as_bytes()), "visible");
    }

    #[test]
    fn markup_becomes_text_and_long_text_is_cut_on_a_char_boundary() {
        let secrets = Secrets::default();
        let page = "<html><head><title>502 Bad Gateway</title><style>p{}</style></head>\
                    <body><script>alert(1)</script><h1>502 Bad Gateway</h1></body></html>";
        assert_eq!(
            secrets.excerpt(page.as_bytes()),
            "502 Bad Gateway 502 Bad Gateway"
        );
        let long = "é".repeat(EXCERPT_BYTES);
        let shown = secrets.excerpt(long.as_bytes());
        assert!(shown.len() <= EXCERPT_BYTES + "…".len());
        assert!(shown.ends_with('…'));
        assert_eq!(secrets.excerpt(b" \n "), "(empty body)");
    }

    #[test]
    fn rotated_secrets_are_remembered_up_to_a_bound() {
        let secrets = Secrets::default();
        for i in 0..MAX_SECRETS + 5 {
            secrets.add(&format!("secret-{i}"));
        }
        secrets.add("secret-10");
        assert_eq!(secrets.0.lock().unwrap().len(), MAX_SECRETS);
        assert_eq!(secrets.redact("secret-10 secret-0"), "[redacted] secret-0");
    }
}
