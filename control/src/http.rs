//! A small HTTP/1.x request reader and response writer, enough to serve
//! `GET /metrics`: [`parse_http_request`] reads one request head (at most
//! [`MAX_HTTP_REQUEST`] bytes), [`http_answer`] turns it into the whole
//! response, and the server closes the connection after writing it.

use crate::metrics::{CONTENT_TYPE, METRICS_PATH};

/// The longest request head (request line and headers, blank line included).
pub(crate) const MAX_HTTP_REQUEST: usize = 8192;

/// What [`parse_http_request`] made of the bytes read so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HttpRequest {
    /// The head has not ended yet: read more (the caller stops at
    /// [`MAX_HTTP_REQUEST`] bytes; this parser says [`HttpRequest::Bad`] then).
    Incomplete,
    /// A GET or HEAD request for `path` (the target without its query).
    Get {
        /// The path, like `/metrics`.
        path: String,
        /// A HEAD request: answer with the headers only.
        head_only: bool,
    },
    /// Not a request this endpoint serves: answer `status` and close.
    Bad {
        /// HTTP status: 400, 405, 431 or 505.
        status: u16,
        /// What was wrong, for the response body.
        message: String,
    },
}

fn bad(status: u16, message: impl Into<String>) -> HttpRequest {
    HttpRequest::Bad { status, message: message.into() }
}

/// Parses an HTTP/1.x request head from the bytes read so far. The head is
/// complete at the first empty line (CRLF CRLF; a bare LF is accepted as a
/// line end too); a body, if any, is ignored. Only GET and HEAD are served.
pub(crate) fn parse_http_request(buf: &[u8]) -> HttpRequest {
    // Empty lines before the request line are skipped (RFC 9112 §2.2).
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(buf.len());
    let Some(end) = head_end(buf, start) else {
        return if buf.len() >= MAX_HTTP_REQUEST {
            bad(431, format!("the request head is longer than {MAX_HTTP_REQUEST} bytes"))
        } else {
            HttpRequest::Incomplete
        };
    };
    if end > MAX_HTTP_REQUEST {
        return bad(431, format!("the request head is longer than {MAX_HTTP_REQUEST} bytes"));
    }
    let Ok(head) = std::str::from_utf8(&buf[start..end]) else {
        return bad(400, "the request head is not text (UTF-8)");
    };
    let mut lines = head.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line));
    if lines.clone().any(|line| line.contains(['\0', '\r'])) {
        return bad(400, "the request head holds a NUL byte or a bare CR");
    }
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return bad(400, "the request line is not METHOD TARGET HTTP/1.x");
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return bad(400, "the method is not a token");
    }
    let minor = match version.strip_prefix("HTTP/") {
        Some(v) if v.len() == 3 && v.as_bytes()[1] == b'.' && v.as_bytes()[0].is_ascii_digit() => {
            if v.as_bytes()[0] != b'1' {
                return bad(505, format!("{version} is not spoken here; expected HTTP/1.0 or HTTP/1.1"));
            }
            match v.as_bytes()[2] {
                d @ b'0'..=b'9' => d - b'0',
                _ => return bad(400, "the request line is not METHOD TARGET HTTP/1.x"),
            }
        }
        _ => return bad(400, "the request line is not METHOD TARGET HTTP/1.x"),
    };
    let mut host = false;
    for line in lines.filter(|line| !line.is_empty()) {
        if line.starts_with([' ', '\t']) {
            return bad(400, "folded header lines are not accepted");
        }
        let Some((name, _value)) = line.split_once(':') else {
            return bad(400, "a header line has no colon");
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return bad(400, "a header name is not a token");
        }
        host |= name.eq_ignore_ascii_case("host");
    }
    if minor >= 1 && !host {
        return bad(400, "an HTTP/1.1 request needs a Host header");
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return bad(405, format!("method {method} is not allowed; expected GET or HEAD")),
    };
    let Some(path) = request_path(target) else {
        return bad(400, "the request target is not a path");
    };
    HttpRequest::Get { path: path.to_owned(), head_only }
}

/// The end of the head (just past its empty line), looking from `start`.
fn head_end(buf: &[u8], start: usize) -> Option<usize> {
    let mut line_start = start;
    for (i, &b) in buf.iter().enumerate().skip(start) {
        if b == b'\n' {
            let line = &buf[line_start..i];
            if line.is_empty() || line == b"\r" {
                return Some(i + 1);
            }
            line_start = i + 1;
        }
    }
    None
}

/// The path of an origin-form (`/metrics?x`) or absolute-form
/// (`http://host:9650/metrics`) target, without the query.
fn request_path(target: &str) -> Option<&str> {
    let rest = if target.starts_with('/') {
        target
    } else {
        let lower: String = target.chars().take(8).collect::<String>().to_ascii_lowercase();
        let after_scheme = if lower.starts_with("http://") {
            &target[7..]
        } else if lower.starts_with("https://") {
            &target[8..]
        } else {
            return None;
        };
        after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
    };
    let path = rest.split(['?', '#']).next().unwrap_or(rest);
    Some(if path.is_empty() { "/" } else { path })
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The reason phrase of a status this endpoint sends.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A whole HTTP/1.1 response with `Content-Length` and `Connection: close`
/// (and `Allow: GET, HEAD` for a 405); the body is left out for HEAD
/// (`head_only`), its length still given. CR and LF in `reason` and
/// `content_type` become spaces.
pub(crate) fn http_response(status: u16, reason: &str, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        clean(reason),
        clean(content_type),
        body.len()
    );
    if status == 405 {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// The response to `request`: the exposition `metrics()` writes for
/// `GET /metrics` (or HEAD), 404 for any other path, the error for a bad
/// request; `None` while the request is incomplete. `metrics` is called only
/// for a scrape, so it may count it.
pub(crate) fn http_answer(request: &HttpRequest, metrics: impl FnOnce() -> String) -> Option<Vec<u8>> {
    let text = "text/plain; charset=utf-8";
    Some(match request {
        HttpRequest::Incomplete => return None,
        HttpRequest::Get { path, head_only } if path == METRICS_PATH => {
            http_response(200, reason_phrase(200), CONTENT_TYPE, &metrics(), *head_only)
        }
        HttpRequest::Get { path, head_only } => {
            let body = format!("{path} is not here; the metrics are at {METRICS_PATH}\n");
            http_response(404, reason_phrase(404), text, &body, *head_only)
        }
        HttpRequest::Bad { status, message } => {
            http_response(*status, reason_phrase(*status), text, &format!("{message}\n"), false)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, head_only: bool) -> HttpRequest {
        HttpRequest::Get { path: path.into(), head_only }
    }

    fn status_of(r: HttpRequest) -> u16 {
        match r {
            HttpRequest::Bad { status, .. } => status,
            other => panic!("expected Bad, got {other:?}"),
        }
    }

    #[test]
    fn good_requests() {
        let cases: [(&[u8], HttpRequest); 9] = [
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: Prometheus/2.0\r\n\r\n", get("/metrics", false)),
            (b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", get("/metrics", true)),
            (b"GET /metrics HTTP/1.0\r\n\r\n", get("/metrics", false)),
            (b"GET /metrics?name[]=x HTTP/1.1\r\nhost: x\r\n\r\n", get("/metrics", false)),
            (b"GET http://127.0.0.1:9650/metrics HTTP/1.1\r\nHost: x\r\n\r\n", get("/metrics", false)),
            (b"GET http://127.0.0.1:9650 HTTP/1.1\r\nHost: x\r\n\r\n", get("/", false)),
            (b"GET http:// HTTP/1.0\r\n\r\n", get("/", false)),
            (b"\r\nGET / HTTP/1.1\nHost: x\n\n", get("/", false)),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", get("/metrics", false)),
        ];
        for (bytes, expected) in cases {
            assert_eq!(parse_http_request(bytes), expected, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn incomplete_until_the_empty_line() {
        let full = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        for n in 0..full.len() {
            assert_eq!(parse_http_request(&full[..n]), HttpRequest::Incomplete, "{n} bytes");
        }
        assert_eq!(parse_http_request(full), get("/metrics", false));
        assert_eq!(parse_http_request(b"\r\n\r\n\r\n"), HttpRequest::Incomplete, "only empty lines yet");
    }

    #[test]
    fn bad_requests() {
        let cases: [(&[u8], u16); 17] = [
            (b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 405),
            (b"DELETE / HTTP/1.0\r\n\r\n", 405),
            (b"get /metrics HTTP/1.0\r\n\r\n", 405),
            (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
            (b"GET /metrics\r\n\r\n", 400),
            (b"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.1 extra\r\n\r\n", 400),
            (b"GET /metrics FTP/1.0\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.x\r\n\r\n", 400),
            (b"G(T /metrics HTTP/1.0\r\n\r\n", 400),
            (b"GET metrics HTTP/1.0\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.1\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
            (b"GET /m\xff HTTP/1.0\r\n\r\n", 400),
            (b"GET /m\0 HTTP/1.0\r\n\r\n", 400),
            (b"GET /metrics HTTP/1.0\r\nX: a\rb\r\n\r\n", 400),
        ];
        for (bytes, status) in cases {
            assert_eq!(status_of(parse_http_request(bytes)), status, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn oversized_requests() {
        // No end in sight after the limit.
        let mut long = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        long.resize(MAX_HTTP_REQUEST, b'a');
        assert_eq!(status_of(parse_http_request(&long)), 431);
        assert_eq!(parse_http_request(&long[..MAX_HTTP_REQUEST - 1]), HttpRequest::Incomplete);
        // Ends, but past the limit.
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(status_of(parse_http_request(&long)), 431);
        // Ends exactly at the limit: accepted.
        let mut exact = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        exact.resize(MAX_HTTP_REQUEST - 4, b'a');
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_http_request(&exact), get("/metrics", false));
        // Garbage of every length never panics.
        for n in 0..600 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            let _ = parse_http_request(&junk);
        }
    }

    #[test]
    fn responses() {
        let r = String::from_utf8(http_response(200, "OK", CONTENT_TYPE, "a 1\n", false)).unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: 4\r\nConnection: close\r\n\r\na 1\n"
        );
        let head = String::from_utf8(http_response(200, "OK", CONTENT_TYPE, "a 1\n", true)).unwrap();
        assert!(head.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"), "{head}");
        let injected = String::from_utf8(http_response(404, "x\r\nSet-Cookie: a", "t\n", "", false)).unwrap();
        assert_eq!(injected.matches("\r\n").count(), 5, "{injected}");

        let scrape = http_answer(&get("/metrics", false), || "m 1\n".into()).unwrap();
        assert!(String::from_utf8(scrape)
            .unwrap()
            .ends_with("version=0.0.4; charset=utf-8\r\nContent-Length: 4\r\nConnection: close\r\n\r\nm 1\n"));
        let mut called = false;
        let missing = http_answer(&get("/", false), || {
            called = true;
            String::new()
        })
        .unwrap();
        assert!(!called, "no scrape counted for a 404");
        assert!(String::from_utf8(missing).unwrap().starts_with("HTTP/1.1 404 Not Found\r\n"));
        let refused = http_answer(&parse_http_request(b"POST /metrics HTTP/1.0\r\n\r\n"), String::new).unwrap();
        let refused = String::from_utf8(refused).unwrap();
        assert!(refused.starts_with("HTTP/1.1 405 Method Not Allowed\r\n") && refused.contains("Allow: GET, HEAD\r\n"));
        assert!(refused.contains("method POST is not allowed"));
        assert_eq!(http_answer(&HttpRequest::Incomplete, String::new), None);
    }

    /// Random bytes and mutations of a valid request: always an answer, never a panic.
    #[test]
    fn random_and_mutated_requests_never_panic() {
        let valid = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut scrapes = 0;
        for request in crate::mutate::inputs(&[valid], 0x2545_f491_4f6c_dd1d, 20_000, 96) {
            let parsed = parse_http_request(&request);
            let answer = http_answer(&parsed, || {
                scrapes += 1;
                String::new()
            });
            assert_eq!(answer.is_none(), parsed == HttpRequest::Incomplete);
        }
        assert!(scrapes > 0, "some mutations are still scrapes");
    }
}
