use super::*;

const LIMITS: HeadLimits = HeadLimits { max_bytes: 64 * 1024, max_headers: 100 };

/// Feeds `input` in pieces of `split` bytes; returns the bytes cleared for hyper and the refusal, if any.
fn run(input: &[u8], split: usize) -> (Vec<u8>, Option<Refusal>) {
    let mut s = Scanner { state: State::Head, limits: LIMITS, heads: 0 };
    let mut held: Vec<u8> = Vec::new();
    let mut delivered = Vec::new();
    let mut scanned = 0;
    for chunk in input.chunks(split) {
        held.extend_from_slice(chunk);
        match s.advance(&held, scanned) {
            Step::Ready(at) => {
                delivered.extend_from_slice(&held[..at]);
                held.drain(..at);
                scanned = 0;
            }
            Step::Refuse(at, r) => {
                delivered.extend_from_slice(&held[..at]);
                return (delivered, Some(r));
            }
        }
    }
    (delivered, None)
}

#[test]
fn passes_valid_pipelines_in_any_split() {
    let input: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
GET /c HTTP/1.0\r\n\r\n";
    for split in [1, 2, 3, 7, 64, 4096] {
        let (out, refusal) = run(input, split);
        assert_eq!(refusal, None, "split {split}");
        assert_eq!(out, input, "split {split}");
    }
}

#[test]
fn refuses_smuggling_after_valid_requests_and_holds_the_bad_head() {
    let good = b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    let smuggle = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n";
    let input = [good.clone(), smuggle.to_vec()].concat();
    for split in [1, 5, 4096] {
        let (out, refusal) = run(&input, split);
        assert_eq!(out, good, "only the valid request passes (split {split})");
        assert_eq!(refusal.unwrap().reason, ProxyErrorReason::BadRequest);
    }
}

#[test]
fn judges_heads() {
    let judge = |head: &str| {
        let s = Scanner { state: State::Head, limits: LIMITS, heads: 0 };
        s.judge(head.as_bytes()).map(|_| ()).map_err(|r| r.why)
    };
    assert!(judge("GET / HTTP/1.1\r\nHost: a\r\n\r\n").is_ok());
    assert!(judge("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n").is_ok());
    for (head, why) in [
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "malformed request line"),
        ("G\0T / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid method"),
        ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", "unsupported HTTP version"),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", "unsupported HTTP version"),
        ("GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request target"),
        ("GET / HTTP/1.1\nHost: a\n\n", "request line must end with CRLF"),
        ("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 request without a Host header"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host header"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n", "control character in a header value"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n", "invalid header name"),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", "obsolete header line folding"),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", "invalid Content-Length"),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "conflicting Content-Length values",
        ),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "ambiguous message framing: Content-Length with Transfer-Encoding",
        ),
        ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding must end in chunked"),
        ("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding on an HTTP/1.0 request"),
    ] {
        assert_eq!(judge(head), Err(why), "{head:?}");
    }
}

#[test]
fn oversize_heads_are_431() {
    let many: String = (0..101).map(|i| format!("X-{i}: 1\r\n")).collect();
    let (_, r) = run(format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes(), 4096);
    assert_eq!(r.unwrap().reason, ProxyErrorReason::HeadersTooLarge);
    let big = "a".repeat(70 * 1024);
    let (_, r) = run(format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes(), 4096);
    assert_eq!(r.unwrap().reason, ProxyErrorReason::HeadersTooLarge);
    // Even when the end never comes: refused once the held bytes pass the limit.
    let (_, r) = run(format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big}").as_bytes(), 4096);
    assert_eq!(r.unwrap().reason, ProxyErrorReason::HeadersTooLarge);
}

#[test]
fn upgrades_pass_through_untouched() {
    let input = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x00\x01binary frames GET  / HTTP/9\r\n\r\n";
    let (out, r) = run(input, 7);
    assert_eq!(r, None);
    assert_eq!(out, input);
}

#[test]
fn a_refused_head_is_read_as_far_as_it_parses() {
    let req =
        readable_request(b"POST /up?x=1 HTTP/1.1\r\nX-A: b\r\nhOsT:  users:8080 \r\nContent-Length: 5\r\nTransfer-")
            .unwrap();
    assert_eq!((req.method().as_str(), req.uri().to_string().as_str()), ("POST", "/up?x=1"));
    assert_eq!(req.headers()["host"], "users:8080");
    assert!(readable_request(b"GET\r\n").is_none(), "no target: nothing to name");
}
