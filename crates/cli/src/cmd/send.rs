//! `msg send`: send each argument (or each line of stdin) as one message.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use msg_net::connect::connect_any;
use msg_net::file::FileError;
use msg_net::length::LengthLink;
use msg_net::limits::{BodyLimit, Family};
use msg_net::send::{
    Awaiting, Bodies, BodyError, STDIN_PIECE, SendAllError, Sender, Split, unconfirmed,
};
use msg_net::text::path_text;
use msg_net::{ConnectOptions, Link, PeerAddr, Transport};
use tokio::io::{BufReader, Stdin};

use crate::args::{
    ClientArgs, FramingArg, Given, GroupArgs, OutputArgs, TransportArg, UsageError,
    check_client_modes, parse_peer_addr, parse_positive_duration, usage,
};
use crate::hint;

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) transport: TransportArg,

    // (`help` rather than a doc comment: rustdoc would read "[::1]" as a link.)
    #[arg(
        value_name = "ADDR",
        help = "Where to send: HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000, or a PORT alone for 127.0.0.1:PORT; with --unix, the socket's path"
    )]
    pub(crate) addr: String,

    /// Messages to send, one per argument; with none, each line of stdin is
    /// one message
    #[arg(value_name = "MESSAGE")]
    pub(crate) messages: Vec<String>,

    /// Send these files instead of messages (over a connection: --tcp,
    /// --unix, --seqpacket, --quic): each goes with its name,
    /// size and BLAKE3 hash, and counts as sent only once the receiver has
    /// checked the hash (`msg listen --tcp --save-dir DIR`). A folder goes
    /// whole, with what it holds (symbolic links and special files are
    /// skipped, and said)
    #[arg(long, visible_alias = "dir", value_name = "PATH", num_args = 1.., conflicts_with_all = ["messages", "raw", "reply"])]
    pub(crate) file: Vec<PathBuf>,

    /// For files: if the receiver kept part of this file from a transfer
    /// that was cut off, send only the rest (the part it holds compared by
    /// BLAKE3 first; the whole file if it differs), and ask it to keep
    /// what arrives should this transfer be cut off too. Not for folders
    #[arg(long, requires = "file")]
    pub(crate) resume: bool,

    /// For a folder: stop at the first entry the receiver refuses (by
    /// default each refusal is reported and the rest goes on; the exit
    /// code is 1 either way)
    #[arg(long, requires = "file")]
    pub(crate) strict: bool,

    /// For files and folders: one JSON object per file on stdout (`path`
    /// as sent, `size`, `hash`, `status` saved or refused, `reason`; a
    /// single file's `saved_as`, the receiver's name for it; with --resume,
    /// `resume`: the bytes the receiver `offered`, where the content went
    /// `from`, and the bytes `sent`), and the summary as the last one
    #[arg(long, requires = "file")]
    pub(crate) json: bool,

    /// Wait for a reply to each message and print it (an error after
    /// --timeout: a lost UDP reply never hangs)
    #[arg(long)]
    pub(crate) reply: bool,

    /// No header and no framing: the bytes alone, for netcat and socat
    /// (stdin goes as it is read, newlines and all; over datagrams and
    /// seqpacket each read is one datagram, as nc sends them)
    #[arg(long)]
    pub(crate) raw: bool,

    /// With --raw --reply over TCP, a reply is what arrives until the peer
    /// closes or sends nothing for this long, e.g. 250ms, 1s; one still
    /// arriving --timeout after its first byte is printed in pieces as it
    /// comes. A raw UDP reply is one datagram
    #[arg(long, value_name = "DURATION", default_value = "250ms", requires = "raw",
          value_parser = parse_positive_duration)]
    pub(crate) reply_idle: Duration,

    /// How messages are told apart on a byte stream (TCP, Unix, QUIC): `msg`
    /// frames, or `length`, a bare 4-byte big-endian length and the body, for a
    /// peer that is not msg (with --reply, its replies framed the same way)
    #[arg(long, value_enum, value_name = "FRAMING", default_value_t = FramingArg::Msg)]
    pub(crate) framing: FramingArg,

    /// Strip "\r\n" from the end of each stdin line, not only "\n" (by
    /// default a "\r" before the newline is part of the message)
    #[arg(long, conflicts_with_all = ["messages", "file"])]
    pub(crate) crlf: bool,

    #[command(flatten)]
    pub(crate) output: OutputArgs,

    #[command(flatten)]
    pub(crate) client: ClientArgs,

    #[command(flatten)]
    pub(crate) group: GroupArgs,

    /// The flags named on the command line (`cli::parse`).
    #[arg(skip)]
    pub(crate) given: Given,
}

pub(crate) async fn run(args: SendArgs, quiet: bool) -> anyhow::Result<()> {
    // clap lets `requires = "file"` go when a MESSAGE is given (--file
    // conflicts with it, and a required argument that conflicts with one
    // given is not asked for), so a flag of files alone is checked here.
    let for_files = [
        ("--json", args.json),
        ("--resume", args.resume),
        ("--strict", args.strict),
    ];
    if let (true, Some((flag, _))) = (args.file.is_empty(), for_files.iter().find(|(_, on)| *on)) {
        return Err(usage(format!(
            "{flag} is for files and folders (--file PATH): without --file it would do nothing"
        )));
    }
    let transport = args.transport.transport();
    let addr = parse_peer_addr(transport, &args.addr)?;
    let caps = transport.caps();
    args.given
        .check_transport_flags(args.transport.chosen_flag(), args.raw)?;
    if !args.reply {
        args.given.refuse(&["escape", "null", "hex"], |flag| {
            format!("{flag} shows replies, and without --reply there are none: add --reply, or drop {flag}")
        })?;
    }
    // A raw stream has no messages: an empty one would be nothing at all;
    // and an empty seqpacket packet reads as the connection's end.
    if args.raw && caps.carries_files() {
        if let Some(n) = args.messages.iter().position(String::is_empty) {
            let why = if caps.keeps_boundaries {
                "an empty seqpacket packet reads as the end of the connection to its \
                 receiver"
            } else {
                "a raw TCP stream cannot carry an empty message (zero bytes are no message \
                 at all)"
            };
            return Err(UsageError(format!(
                "message {} is empty: {why}; drop --raw to send a header-only one",
                n + 1
            ))
            .into());
        }
    }
    let mut options = args.client.options(transport, &addr)?;
    let authenticated = options.auth.is_some();
    check_client_modes(
        args.raw,
        args.framing,
        &args.transport,
        authenticated,
        &[(
            !args.file.is_empty(),
            "a file needs msg's frames for its name and hash: use --framing msg",
        )],
    )?;
    let length = args.framing == FramingArg::Length;
    if !args.file.is_empty() && !caps.carries_files() {
        return Err(usage(hint::text(&FileError::NeedsTcp)));
    }
    if args.resume {
        if let Some(dir) = args.file.iter().find(|path| path.is_dir()) {
            return Err(usage(format!(
                "--resume takes files, not folders: {} is a folder (send it without --resume)",
                path_text(dir)
            )));
        }
    }
    if !args.file.is_empty() {
        return send_paths(&args, transport, &addr, &options, quiet).await;
    }
    // Arguments are known before anything is sent, so one too large is a
    // usage error, like an empty one on raw TCP. A TCP frame's limit is
    // known before connecting; a UDP datagram's depends on the address
    // family, known once connected (which sends nothing).
    let limit_of = |family| {
        msg_net::length::Framing::from(args.framing).body_limit(
            transport,
            family,
            args.client.tcp.max_frame,
            authenticated,
            args.raw,
        )
    };
    if let Some(limit) = limit_of(None) {
        limit.check_args(&args.messages)?;
    }
    // Each reply whole, on its own line (raw TCP too: a reply is what was
    // read back for one message).
    let printer = args.output.format(false, false);
    options.group = args.group.options(transport, &addr)?;
    let options = &options;
    let (mut sender, addr) = connect_any(transport, &addr, |addr| async move {
        if length {
            Ok(Sender::Length(
                LengthLink::connect(transport, addr, options).await?,
            ))
        } else {
            Sender::connect(transport, addr, args.raw, options).await
        }
    })
    .await?;
    let limit = limit_of(addr.inet().as_ref().map(Family::of));
    if let Some(limit) = &limit {
        limit.check_args(&args.messages)?;
    }
    let mut source = Source::new(&args.messages, limit, args.crlf, args.raw);
    let group = sender.is_one_to_many();
    let shown = |peer: &PeerAddr, seq, body: &[u8]| {
        let mut out = crate::output::stdout();
        if group {
            // Every receiver answers: each reply after its sender.
            write!(out, "{peer}\t")?;
        }
        printer.write(&mut out, peer, Some(seq), body)?;
        out.flush()
    };
    let awaiting = args.reply.then_some(Awaiting {
        timeout: args.client.timeout,
        idle: args.reply_idle,
    });
    let sent = sender
        .send_all(source.bodies(), &addr, awaiting, shown)
        .await;
    let sent = sent.map_err(|err| match err {
        SendAllError::Body(err) => source.error(err),
        SendAllError::Reply(err) => err.into(),
        SendAllError::Shown(err) => anyhow::Error::new(err).context("cannot write to stdout"),
        err => err.into(),
    })?;
    let answers = (group && args.reply).then_some(sent.answers);
    sender.finish(args.client.timeout, args.reply).await?;
    let replied = args.reply && !group;
    let line = unconfirmed(caps, sent.messages, sent.bytes, &addr, answers, replied);
    if let Some(line) = line.filter(|_| !quiet) {
        crate::output::stderr_line(format_args!("{line}"));
    }
    Ok(())
}

/// Sends each `--file` path, a folder as a tree, on one connection (a
/// fresh one after a path that failed); fails at the end if any path, or
/// any entry of a folder, did not arrive.
async fn send_paths(
    args: &SendArgs,
    transport: Transport,
    addr: &str,
    options: &ConnectOptions,
    quiet: bool,
) -> anyhow::Result<()> {
    let connect = || async {
        connect_any(transport, addr, |addr| {
            Link::connect(transport, addr, options)
        })
        .await
        .map(|(link, _)| link)
    };
    let mut link = connect().await?;
    let mut tally = msg_net::file::Tally::default();
    // Of several paths, one that fails does not stop the rest, as scp's
    // and rsync's do not (audit, round sixteen: the first refusal ended
    // the list): it is said, the next goes on a fresh connection (a failed
    // transfer leaves its own mid-file), and the send fails at the end.
    let last = args.file.len() - 1;
    for (i, path) in args.file.iter().enumerate() {
        let sent = if path.is_dir() {
            send_folder(&mut link, path, args, quiet)
                .await
                .map(|sent| tally.add(&sent))
        } else {
            send_file(&mut link, path, args, quiet).await
        };
        match sent {
            Ok(()) => {}
            Err(err) if i < last => {
                crate::output::stderr_line(format_args!("msg: {}", hint::chain(&err)));
                tally.unsent += 1;
                link = connect().await?;
            }
            Err(err) if tally.unsent > 0 => {
                tally.unsent += 1;
                return Err(err.context(tally.unsent_line(args.file.len())));
            }
            Err(err) => return Err(err),
        }
    }
    // Every file had its verdict.
    link.close(args.client.timeout, true).await?;
    match tally.failure(args.file.len()) {
        None => Ok(()),
        Some(failure) => Err(anyhow!(failure)),
    }
}

/// Sends one file, with a progress bar on a terminal, and says on stderr
/// what the receiver confirmed.
async fn send_file(
    link: &mut Link,
    path: &std::path::Path,
    args: &SendArgs,
    quiet: bool,
) -> anyhow::Result<()> {
    let size = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
    let bar = progress_bar(size, &path_text(path), quiet);
    let sent = link
        .send_file(path, args.client.timeout, args.resume, &mut |bytes| {
            bar.set_position(bytes);
        })
        .await;
    bar.finish_and_clear();
    if let (true, Err(msg_net::Error::File(FileError::Refused { reason, .. }))) = (args.json, &sent)
    {
        // As a folder's refused entries are: the object --json promises
        // for every file, then the error.
        json_line(&serde_json::json!({
            "path": path_text(path),
            "size": size,
            "hash": null,
            "status": "refused",
            "reason": reason,
        }));
    }
    let sent = match sent {
        // Its own words name the path: said once, not twice (audit, round
        // twelve).
        Err(err @ msg_net::Error::File(FileError::Name { .. })) => return Err(err.into()),
        sent => sent.with_context(|| format!("cannot send {}", path_text(path)))?,
    };
    if args.json {
        json_line(&sent.json(&path_text(path), args.resume));
    }
    if !quiet {
        crate::output::stderr_line(format_args!("{}", sent.line()));
    }
    Ok(())
}

/// Sends the folder `dir`, a progress bar over all of it; each refusal and
/// skip on stderr (each file with `--json` on stdout), then a summary,
/// whose counts it returns.
async fn send_folder(
    link: &mut Link,
    dir: &std::path::Path,
    args: &SendArgs,
    quiet: bool,
) -> anyhow::Result<msg_net::file::tree::TreeSent> {
    let options = msg_net::file::tree::TreeOptions {
        wait: args.client.timeout,
        strict: args.strict,
    };
    let mut report = FolderReport {
        bar: progress_bar(0, &path_text(dir), quiet),
        json: args.json,
    };
    let sent = link.send_tree(dir, options, &mut report).await;
    report.bar.finish_and_clear();
    let sent = sent.with_context(|| format!("cannot send the folder {}", path_text(dir)))?;
    if args.json {
        json_line(&sent.json());
    }
    if !quiet {
        crate::output::stderr_line(format_args!("{}", sent.line()));
    }
    Ok(sent)
}

/// One JSON object on a line of stdout.
fn json_line(value: &serde_json::Value) {
    let mut out = crate::output::stdout();
    let _ = writeln!(out, "{value}");
}

/// What `msg send --file DIR` shows while the folder goes.
struct FolderReport {
    bar: indicatif::ProgressBar,
    json: bool,
}

impl msg_net::file::tree::TreeReport for FolderReport {
    fn started(&mut self, _files: u64, bytes: u64) {
        self.bar.set_length(bytes);
    }

    fn progress(&mut self, sent: u64) {
        self.bar.set_position(sent);
    }

    fn entry(&mut self, entry: &msg_net::file::tree::EntryReport) {
        if let Some(reason) = &entry.refused {
            self.bar.suspend(|| {
                crate::output::stderr_line(format_args!(
                    "msg send: the receiver refused {}: {reason}",
                    entry.path
                ));
            });
        }
        // A folder made is no news; one refused is, and the summary's
        // `refused` counts it.
        if self.json && (!entry.folder || entry.refused.is_some()) {
            json_line(&entry.json());
        }
    }

    fn skipped(&mut self, skipped: &msg_net::file::tree::Skipped) {
        let path = path_text(&skipped.path);
        self.bar.suspend(|| {
            crate::output::stderr_line(format_args!("msg send: skipped {path}: {}", skipped.why));
        });
        // A file that should have gone is a file's line; a link or a
        // special file, never sent, is counted in the summary alone.
        if self.json && skipped.failed {
            json_line(&skipped.json());
        }
    }
}

/// Bytes, rate and time left on stderr, only when stderr is a terminal.
fn progress_bar(size: u64, name: &str, quiet: bool) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::hidden());
    if !quiet && std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(crate::output::FILE_PROGRESS)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_message(name.to_owned());
    }
    bar
}

/// The errors that refuse a message larger than msg-net's [`BodyLimit`],
/// in the transport's own words (docs/wire.md lists them).
trait LimitErrors {
    /// A usage error for the first argument too large to send.
    fn check_args(&self, messages: &[String]) -> anyhow::Result<()>;
    /// The runtime error for stdin line `n`, longer than the limit.
    fn line_too_long(&self, n: u64) -> anyhow::Error;
}

impl LimitErrors for BodyLimit {
    fn check_args(&self, messages: &[String]) -> anyhow::Result<()> {
        let Some(len) = messages.iter().map(String::len).find(|&len| len > self.max) else {
            return Ok(());
        };
        Err(usage(hint::message_too_large(self, len)))
    }

    fn line_too_long(&self, n: u64) -> anyhow::Error {
        anyhow!("{}", self.line_refusal(n, &hint::set_by(self.set_by)))
    }
}

/// Where the messages come from: the arguments, or stdin a line at a time
/// (raw, a piece at a time as read, within a datagram's limit where there
/// is one), read by msg-net's [`Bodies`]; `msg connect` reads stdin with
/// it too.
pub(crate) struct Source<'a>(Bodies<'a, BufReader<Stdin>>, Option<BodyLimit>);

impl<'a> Source<'a> {
    pub(crate) fn new(
        messages: &'a [String],
        limit: Option<BodyLimit>,
        crlf: bool,
        raw: bool,
    ) -> Self {
        let stdin = BufReader::with_capacity(STDIN_PIECE, tokio::io::stdin());
        let split = match (&limit, raw) {
            (Some(limit), false) => Split::Lines {
                max: limit.max,
                crlf,
            },
            (limit, _) => Split::Pieces {
                max: limit.as_ref().map(|limit| limit.max),
            },
        };
        Self(Bodies::new(messages, stdin, split), limit)
    }

    /// The bodies, for a caller that reads them itself.
    pub(crate) fn bodies(&mut self) -> &mut Bodies<'a, BufReader<Stdin>> {
        &mut self.0
    }

    /// Why there was no next body, in msg's words.
    pub(crate) fn error(&self, err: BodyError) -> anyhow::Error {
        match (err, &self.1) {
            (BodyError::Read(err), _) => anyhow::Error::new(err).context("cannot read stdin"),
            (BodyError::TooLong { line }, Some(limit)) => limit.line_too_long(line),
            (err, _) => err.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_net::Transport;

    #[test]
    fn the_errors_name_the_limit_and_what_sets_it() {
        let udp = BodyLimit::of(Transport::Udp, Some(Family::V4), 0, false, false).unwrap();
        assert_eq!(udp.max, 65_479);
        assert_eq!(
            udp.line_too_long(3).to_string(),
            "line 3 is longer than 65479 bytes, the largest message a UDP datagram holds \
             on IPv4 (65507 bytes less a 28-byte header)"
        );
        let raw = BodyLimit::of(Transport::Udp, Some(Family::V6), 0, false, true).unwrap();
        assert_eq!(
            raw.line_too_long(1).to_string(),
            "line 1 is longer than 65527 bytes, the largest message a UDP datagram holds on IPv6"
        );
        let tagged = BodyLimit::of(Transport::Udp, Some(Family::V4), 0, true, false).unwrap();
        assert_eq!(tagged.max, 65_431);
        let tcp = BodyLimit::of(Transport::Tcp, None, 100, true, false).unwrap();
        assert_eq!(
            tcp.check_args(&["x".repeat(41)]).unwrap_err().to_string(),
            "message is 41 bytes; a TCP frame holds at most 100 bytes, set by --max-frame \
             (40 for the body after a 28-byte header and a 32-byte tag)"
        );
        assert!(tcp.check_args(&["x".repeat(40)]).is_ok());
        assert!(
            BodyLimit::of(Transport::Tcp, None, 100, false, true).is_none(),
            "raw TCP has no limit"
        );
    }
}
