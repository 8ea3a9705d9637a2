//! The receiver's clean-up paths, with their timings shortened through
//! [`SaveConfig`]: a sender gone quiet is given up (mid-file, after an
//! offer to resume, mid-folder), and a running listener's sweep removes the
//! partial files kept for resuming once they are too old, and nothing
//! else.

use std::time::SystemTime;

use msg_proto::tree::TreeStart;
use tokio::net::{TcpListener, TcpStream};

use super::tests::header;
use super::*;

/// How long the receivers below wait for a quiet sender.
const QUIET: Duration = Duration::from_secs(1);

/// A bound on every wait below, so that a receiver that never gives up
/// fails the test rather than hanging it; not a measure of anything.
const BOUND: Duration = Duration::from_secs(20);

/// A connected pair over loopback: the sender's end, the receiver's.
async fn pair() -> (Connection<TcpStream>, Connection<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let options = msg_tcp::Options::default;
    (
        Connection::new(client.unwrap(), options()).unwrap(),
        Connection::new(accepted.unwrap().0, options()).unwrap(),
    )
}

/// Saves into `dir`, giving a quiet sender up after [`QUIET`].
fn quick(dir: &Path) -> SaveConfig {
    SaveConfig {
        idle: QUIET,
        ..SaveConfig::new(dir.to_owned(), false, false, PARTIAL_MAX_AGE)
    }
}

/// The next answer on `conn`, within [`BOUND`].
async fn answer(conn: &mut Connection<TcpStream>) -> Message {
    tokio::time::timeout(BOUND, conn.read_message())
        .await
        .expect("an answer in time")
        .unwrap()
        .expect("an answer, not the end")
}

/// The receiver's refusal, once it gave the sender up; `None` for any
/// other answer.
fn refusal(msg: &Message) -> Option<String> {
    match FileResult::from_message(msg) {
        Ok(FileResult::Refused { reason }) => Some(reason),
        _ => None,
    }
}

/// The partial files kept for resuming in `dir`: name and size.
fn kept(dir: &Path) -> Vec<(String, u64)> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, entry.metadata().unwrap().len())
        })
        .filter(|(name, _)| resume::is_kept_name(name))
        .collect()
}

#[tokio::test]
async fn a_sender_quiet_mid_file_then_after_the_offer_is_given_up_and_what_came_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let save = quick(dir.path());
    let events = Events::discard();
    let mut msg = header("kept.bin", 10_000).to_message();
    msg.flags |= FLAG_RESUME;

    // Mid-file: a chunk, then nothing.
    let (mut sender, mut receiver) = pair().await;
    let sending = async move {
        assert_eq!(
            FileResult::from_message(&answer(&mut sender).await),
            Ok(FileResult::Ready)
        );
        let piece = chunk(0, Bytes::from(vec![7u8; 4000]));
        sender.write_message(&piece).await.unwrap();
        refusal(&answer(&mut sender).await)
    };
    let counters = crate::Counters::default();
    let receiving = receive(
        &mut receiver,
        &msg,
        Some(&save),
        &events,
        counters.transfer(),
    );
    let (received, reason) =
        tokio::time::timeout(BOUND, async { tokio::join!(receiving, sending) })
            .await
            .expect("the quiet sender given up");
    let told = "nothing for 1s after 4000 of 10000 bytes";
    assert!(received.unwrap_err().to_string().ends_with(told));
    assert_eq!(reason.as_deref(), Some(told));
    let held = kept(dir.path());
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].1, 4000);

    // Back, offered what was kept, and quiet again: given up as well, and
    // what was kept stays.
    let (mut sender, mut receiver) = pair().await;
    let sending = async move {
        let offer = answer(&mut sender).await;
        assert_eq!(offer.kind, Kind::FileOffer);
        refusal(&answer(&mut sender).await)
    };
    let receiving = receive(
        &mut receiver,
        &msg,
        Some(&save),
        &events,
        counters.transfer(),
    );
    let (received, reason) =
        tokio::time::timeout(BOUND, async { tokio::join!(receiving, sending) })
            .await
            .expect("the quiet sender given up");
    let told = "no answer to the offer to resume within 1s";
    assert!(received.unwrap_err().to_string().ends_with(told));
    assert_eq!(reason.as_deref(), Some(told));
    assert_eq!(kept(dir.path()), held);
}

#[tokio::test]
async fn a_sender_quiet_mid_folder_is_given_up_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let save = quick(dir.path());
    let start = TreeStart {
        name: FileName::new("tree").unwrap(),
        mode: 0o755,
        files: 1,
        folders: 0,
        bytes: 100,
    }
    .to_message();
    let (mut sender, mut receiver) = pair().await;
    let sending = async move {
        assert_eq!(
            FileResult::from_message(&answer(&mut sender).await),
            Ok(FileResult::Ready)
        );
        let entry = msg_proto::tree::TreeEntry {
            kind: msg_proto::tree::EntryKind::File,
            mode: 0o644,
            size: 100,
            path: msg_proto::tree::TreePath::new("a").unwrap(),
        };
        sender.write_message(&entry.to_message()).await.unwrap();
        let piece = chunk(0, Bytes::from(vec![7u8; 40]));
        sender.write_message(&piece).await.unwrap();
        refusal(&answer(&mut sender).await)
    };
    let events = Events::discard();
    let counters = crate::Counters::default();
    let receiving = tree::receive_tree(
        &mut receiver,
        &start,
        Some(&save),
        &events,
        counters.transfer(),
    );
    let (received, reason) =
        tokio::time::timeout(BOUND, async { tokio::join!(receiving, sending) })
            .await
            .expect("the quiet sender given up");
    let told = "nothing for 1s in the folder";
    assert!(received.unwrap_err().to_string().ends_with(told));
    assert_eq!(reason.as_deref(), Some(told));
    let left: Vec<_> = fs::read_dir(dir.path().join("tree")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_running_listener_removes_kept_partial_files_once_too_old_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let save = SaveConfig {
        sweep_every: Duration::from_millis(50),
        ..SaveConfig::new(
            dir.path().to_owned(),
            false,
            false,
            Duration::from_secs(3600),
        )
    };
    let sweeping = tokio::spawn(save.sweep());
    let name = |fill: &str| format!(".msg-resume-{}", fill.repeat(32));
    let (old, young) = (name("a"), name("b"));
    for file in [
        &old,
        &young,
        &"notes.txt".to_owned(),
        &".msg-resume-x".to_owned(),
    ] {
        fs::write(dir.path().join(file), b"partial").unwrap();
    }
    // A sweep or two finds nothing to remove: all are young.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(kept(dir.path()).len(), 2);
    // One of them ages past the listener's --partial-max-age while it
    // runs: the next sweep removes it, and it alone.
    fs::File::options()
        .write(true)
        .open(dir.path().join(&old))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(2 * 3600))
        .unwrap();
    let deadline = Instant::now() + BOUND;
    while dir.path().join(&old).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sweeping.abort();
    let mut left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [young, ".msg-resume-x".to_owned(), "notes.txt".to_owned()]
    );
}
