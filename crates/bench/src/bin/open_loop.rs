//! `cargo run --release -p forward-auth-bench --bin open_loop -- --rate R --duration S --connections C
//! [-H 'Name: value']... http://127.0.0.1:PORT/path`: the open-loop load generator
//! of `scripts/bench.sh` for latency at a fixed rate. BENCHMARK ONLY.
//!
//! Request `i` is due at `start + i / R`, whether or not earlier answers came
//! back, and its latency is counted from that moment to the end of its answer
//! (no coordinated omission: a stall counts for every request due during it).
//! One thread busy-polls non-blocking keep-alive connections, so the
//! generator itself never sleeps and adds no timer or wake-up delay of its own;
//! it keeps the core it runs on busy. Prints a JSON summary shaped like oha's
//! (`summary.requestsPerSec`, `latencyPercentiles`, `statusCodeDistribution`,
//! `errorDistribution`). Plain HTTP/1.1 to loopback only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test and benchmark code: a failure should stop loudly"
)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Args {
    rate: f64,
    duration: Duration,
    connections: usize,
    headers: Vec<String>,
    host: String,
    path: String,
}

fn parse_args() -> Result<Args, String> {
    let mut rate = None;
    let mut duration = None;
    let mut connections = 32;
    let mut headers = Vec::new();
    let mut url = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--rate" => rate = value("--rate")?.parse::<f64>().ok(),
            "--duration" => {
                let text = value("--duration")?;
                let secs = text.trim_end_matches('s').parse::<f64>();
                duration = secs.ok().map(Duration::from_secs_f64);
            }
            "--connections" => {
                connections = value("--connections")?
                    .parse()
                    .map_err(|_| "--connections takes a number")?
            }
            "-H" => headers.push(value("-H")?),
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    let rate = rate
        .filter(|r| *r > 0.0)
        .ok_or("--rate R (requests/s) is required")?;
    let duration = duration.ok_or("--duration S is required")?;
    let url = url.ok_or("the URL is required")?;
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs (loopback)")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    };
    if !(host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")) {
        return Err(format!("{host}: loopback only"));
    }
    if connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    Ok(Args {
        rate,
        duration,
        connections,
        headers,
        host,
        path,
    })
}

/// One keep-alive connection with at most one request in flight.
struct Conn {
    stream: TcpStream,
    /// When the request in flight was due; `None`: idle.
    due: Option<Instant>,
    buf: Vec<u8>,
}

impl Conn {
    fn open(host: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(host)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        Ok(Conn {
            stream,
            due: None,
            buf: Vec::with_capacity(4096),
        })
    }
}

/// The status code and length of a complete response at the start of `buf`.
fn complete_response(buf: &[u8]) -> Option<(u16, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let status = head.get(9..12)?.parse().ok()?;
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    (buf.len() >= end + length).then_some((status, end + length))
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e9
}

fn run(args: &Args) -> Result<serde_json::Value, String> {
    let mut request = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", args.path, args.host);
    for header in &args.headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let request = request.into_bytes();

    let mut conns = (0..args.connections)
        .map(|_| Conn::open(&args.host))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("connect to {}: {e}", args.host))?;
    let mut latencies: Vec<u64> =
        Vec::with_capacity((args.rate * args.duration.as_secs_f64() * 1.1) as usize + 16);
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut waiting: VecDeque<Instant> = VecDeque::new();

    let start = Instant::now();
    let end = start + args.duration;
    // Answers still out at the end get this long to arrive.
    let drain_until = end + Duration::from_secs(5);
    let total = (args.rate * args.duration.as_secs_f64()).round() as u64;
    let mut issued: u64 = 0;
    let mut chunk = [0u8; 16384];
    loop {
        let now = Instant::now();
        while issued < total {
            let due = start + Duration::from_secs_f64(issued as f64 / args.rate);
            if due > now {
                break;
            }
            waiting.push_back(due);
            issued += 1;
        }
        for conn in conns.iter_mut().filter(|c| c.due.is_none()) {
            let Some(due) = waiting.pop_front() else {
                break;
            };
            match conn.stream.write(&request) {
                Ok(n) if n == request.len() => conn.due = Some(due),
                Ok(_) => return Err("a request did not fit the socket buffer".into()),
                Err(e) => {
                    *errors.entry(format!("write: {e}")).or_default() += 1;
                    *conn = Conn::open(&args.host).map_err(|e| format!("reconnect: {e}"))?;
                }
            }
        }
        for conn in conns.iter_mut() {
            let Some(due) = conn.due else { continue };
            match conn.stream.read(&mut chunk) {
                Ok(0) => {
                    *errors.entry("connection closed".into()).or_default() += 1;
                    *conn = Conn::open(&args.host).map_err(|e| format!("reconnect: {e}"))?;
                }
                Ok(n) => {
                    conn.buf.extend_from_slice(&chunk[..n]);
                    if let Some((status, len)) = complete_response(&conn.buf) {
                        latencies.push(due.elapsed().as_nanos() as u64);
                        *statuses.entry(status.to_string()).or_default() += 1;
                        conn.buf.drain(..len);
                        conn.due = None;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    *errors.entry(format!("read: {e}")).or_default() += 1;
                    *conn = Conn::open(&args.host).map_err(|e| format!("reconnect: {e}"))?;
                }
            }
        }
        let idle = waiting.is_empty() && conns.iter().all(|c| c.due.is_none());
        if issued >= total && (idle || now >= drain_until) {
            break;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let unanswered = conns.iter().filter(|c| c.due.is_some()).count() + waiting.len();
    if unanswered > 0 {
        *errors
            .entry("no answer within 5 s after the end".into())
            .or_default() += unanswered as u64;
    }
    latencies.sort_unstable();
    let pct = |q| percentile(&latencies, q);
    Ok(serde_json::json!({
        "summary": {
            "requestsPerSec": latencies.len() as f64 / elapsed.max(args.duration.as_secs_f64()),
            "total": elapsed,
            "slowest": latencies.last().map_or(0.0, |&n| n as f64 / 1e9),
        },
        "latencyPercentiles": {
            "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99),
            "p99.9": pct(0.999), "p99.99": pct(0.9999),
        },
        "statusCodeDistribution": statuses,
        "errorDistribution": errors,
        "generator": "crates/bench/src/bin/open_loop.rs",
    }))
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("open_loop: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(summary) => {
            println!("{summary}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("open_loop: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
