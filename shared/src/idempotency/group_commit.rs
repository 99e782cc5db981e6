//! Group commit for the batched mode: the completions and releases of a batch's records that
//! finish close together are written in one batch request instead of one request each; a
//! completion that commits a unit of work shares one transaction with the others that do
//! (see [`Commit::commit_many`]).
//!
//! A finished record's write waits for company at most [`GROUP_COMMIT_WINDOW`], and not at
//! all once every handler of the batch has finished. The bound is what makes waiting safe:
//! until its completion is written, a record whose handler's side effects happened would run
//! again if the process died, so every millisecond of waiting widens that window. 5 ms is
//! about one DynamoDB round trip: it at most doubles a window that exists anyway (the write
//! itself takes a round trip) and is nothing next to the seconds a Lambda invocation lives,
//! while handlers of one batch, started together, mostly finish within it of each other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use tracing::Instrument;

use super::error::StoreError;
use super::run::Commit;
use super::store::{Completion, IdempotencyStore, Release};

/// How long a finished record's write waits for others to share its request.
pub(crate) const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(5);

/// A write after a handler: its completion with what it commits (`W`), or the release of
/// its claim.
pub(crate) enum Write<W> {
    Complete(Completion, W),
    Release(Release),
}

struct Pending<W> {
    write: Write<W>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The handlers' side: each sends its one write and waits for its result.
pub(crate) struct Committer<'a, W> {
    sender: mpsc::UnboundedSender<Pending<W>>,
    running: &'a AtomicUsize,
}

impl<W> Committer<'_, W> {
    /// Writes `write` with whatever else is ready, and says how it went. Called once per
    /// handler that was counted in `running`.
    pub(crate) async fn write(&self, write: Write<W>) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        let sent = self.sender.unbounded_send(Pending { write, done });
        // After the send: once the writer sees no handler running, every write is queued.
        self.running.fetch_sub(1, Ordering::SeqCst);
        sent.map_err(|_| StoreError::other("the batch's group commit had stopped"))?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::other(
                "the batch's group commit dropped the write",
            ))
        })
    }
}

/// Where a record's completion or release goes: straight to the store (the per-record
/// mode), or through its batch's group commit.
pub(crate) enum Writes<'a, 'b, W> {
    /// One request per write.
    Direct,
    /// Shared requests with the batch's other writes.
    Grouped(&'a Committer<'b, W>),
}

impl<W> Clone for Writes<'_, '_, W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<W> Copy for Writes<'_, '_, W> {}

impl<W> Writes<'_, '_, W> {
    /// Releases `release`'s claim.
    pub(crate) async fn release<S: IdempotencyStore>(
        self,
        store: &S,
        release: Release,
    ) -> Result<(), StoreError> {
        match self {
            Self::Direct => store.release(&release.key, &release.owner).await,
            Self::Grouped(committer) => committer.write(Write::Release(release)).await,
        }
    }
}

/// A committer for `running` handlers, and the writer to run next to them (it ends when
/// every committer is dropped).
pub(crate) fn group_commit<'a, S: IdempotencyStore, W: Commit<S> + 'a>(
    store: &'a S,
    running: &'a AtomicUsize,
) -> (Committer<'a, W>, impl std::future::Future<Output = ()> + 'a) {
    let (sender, receiver) = mpsc::unbounded();
    (
        Committer { sender, running },
        writer(store, receiver, running),
    )
}

async fn writer<S: IdempotencyStore, W: Commit<S>>(
    store: &S,
    mut receiver: mpsc::UnboundedReceiver<Pending<W>>,
    running: &AtomicUsize,
) {
    while let Some(first) = receiver.next().await {
        let mut group = vec![first];
        let window = tokio::time::sleep(GROUP_COMMIT_WINDOW);
        tokio::pin!(window);
        loop {
            if running.load(Ordering::SeqCst) == 0 {
                while let Ok(pending) = receiver.try_recv() {
                    group.push(pending);
                }
                break;
            }
            tokio::select! {
                next = receiver.next() => match next {
                    Some(pending) => group.push(pending),
                    None => break,
                },
                () = &mut window => break,
            }
        }
        write_group(store, group).await;
    }
}

async fn write_group<S: IdempotencyStore, W: Commit<S>>(store: &S, group: Vec<Pending<W>>) {
    let mut completions = Vec::new();
    let mut completed = Vec::new();
    let mut releases = Vec::new();
    let mut released = Vec::new();
    for Pending { write, done } in group {
        match write {
            Write::Complete(completion, work) => {
                completions.push((completion, work));
                completed.push(done);
            }
            Write::Release(release) => {
                releases.push(release);
                released.push(done);
            }
        }
    }
    let (completion_results, release_results) = futures::join!(
        async {
            if completions.is_empty() {
                Vec::new()
            } else {
                let events = completions.iter().map(|(_, work)| work.events()).sum();
                let span = crate::telemetry::steps::complete_batch(completions.len(), events);
                W::commit_many(store, completions).instrument(span).await
            }
        },
        async {
            if releases.is_empty() {
                Vec::new()
            } else {
                store.release_many(&releases).await
            }
        }
    );
    for (done, result) in completed
        .into_iter()
        .zip(completion_results)
        .chain(released.into_iter().zip(release_results))
    {
        // A handler that stopped waiting has nothing left to tell.
        let _ = done.send(result);
    }
}
