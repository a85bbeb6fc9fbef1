//! Placeholder until the metrics renderer lands (replaced on merge).
use crate::admin::{Stats, Status};
pub(crate) enum HttpRequest {
    Incomplete,
    Get { path: String, head_only: bool },
    Bad { status: u16, reason: &'static str },
}
pub(crate) fn parse_http_request(buf: &[u8]) -> HttpRequest {
    if !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        return HttpRequest::Incomplete;
    }
    let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    match parts.next() {
        Some(b"GET") => {}
        _ => return HttpRequest::Bad { status: 405, reason: "Method Not Allowed" },
    }
    HttpRequest::Get { path: String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned(), head_only: false }
}
pub(crate) fn http_response(status: u16, reason: &str, content_type: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    out.into_bytes()
}
pub(crate) fn render(_status: &Status, _stats: &Stats) -> String {
    String::new()
}
