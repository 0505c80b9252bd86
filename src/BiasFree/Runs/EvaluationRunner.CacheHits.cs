using System.Runtime.CompilerServices;
using BiasFree.Judges;
using BiasFree.Methods;
using BiasFree.Mitigations;
using BiasFree.Probes;
using Microsoft.Extensions.AI;

namespace BiasFree.Runs;

public sealed partial class EvaluationRunner
{
    private int _replayed;

    /// <summary>Rows the last <see cref="RunAsync"/> replayed from the cache in batches (tests check the path was taken).</summary>
    internal int Replayed => Volatile.Read(ref _replayed);

    /// <summary>Items per cache-answer batch (<see cref="CacheHitBatches"/>; tests lay out their runs in chunks of this size).</summary>
    internal const int CacheHitChunkSize = CacheHitBatches.ChunkSize;

    /// <summary>
    /// Replays cache answers in batches, on the thread that takes the next work items, instead of one async worker item
    /// each: takes the next <see cref="ChunkSize"/> items, looks up every cache key of the chunk on one pooled reader in one
    /// read transaction, judges the answers found with the rule judge in a loop, and hands their rows to the store's writer
    /// as ONE write (one transaction); only the items it could not answer (misses) go on to the run's workers.
    /// </summary>
    /// <remarks>
    /// <para><b>Why.</b> In a sampled profile of a 50,000-probe cache-only rerun (docs/runs-and-reports.md, "Sixth round"),
    /// a quarter of the CPU was the per-item machinery around a cache answer: a worker's async state machines through the
    /// chat pipeline, one queued write and one commit wake-up per row, thread-pool dispatch, and one read snapshot per lookup.</para>
    /// <para><b>Same rows.</b> An item is replayed only when the per-item path would answer it from the cache without calling
    /// anything but the cache: its method's pipeline is the recording client itself (no mitigation wraps it), the cache is
    /// read, every turn's key is in the cache, and its judge is the rule judge (synchronous). The requests, reply, tokens and
    /// verdict are built as <see cref="RecordingChatClient"/> and <see cref="RunOneAsync"/> build them (same key, same
    /// recorded messages, cached flag, details, latency 0, no fallback); <c>CacheHitBatchTests</c> compares the rows of the
    /// two paths column by column. Anything else, a lookup miss included, is a miss and takes the per-item path unchanged
    /// (it looks the key up again; a reply committed meanwhile is then found there).</para>
    /// <para><b>Durability and progress.</b> A replayed row counts (progress, running BFS, the persistent-failure rule) only
    /// after the transaction holding its batch has committed, as a worker's row counts only after its save returns; a crash
    /// loses a whole uncommitted batch or nothing of it, and a resume redoes exactly the rows not committed. While one batch
    /// commits, the next is looked up and judged.</para>
    /// </remarks>
    private sealed class CacheHitBatches(EvaluationRunner runner, RunSpec spec, MethodPrompts prompts, IReadOnlySet<string> methods,
        Func<ResultRecord, ItemFailure?, bool> counted)
    {
        /// <summary>Items looked up per batch (bounds the probes held and the rows per transaction).</summary>
        public const int ChunkSize = 512;

        // After a chunk with no cache answer, that many chunks go straight to the workers (doubling up to the limit): a
        // first run on a store with other runs' cache computes each key once, not here and again in the client.
        private const int MaxSkippedChunks = 64;

        // One read snapshot for consecutive chunks (RunStore.CacheReads remarks: a new one re-reads the cache's pages from the
        // file), ended when this old, and before misses are handed on (the workers may make the enumerator wait, and an
        // open snapshot keeps the WAL from being checkpointed meanwhile). A quarter of a second of a rerun's commits is a
        // few MB of WAL.
        private static readonly TimeSpan SnapshotAge = TimeSpan.FromMilliseconds(250);
        private RunStore.CacheReads? _reads;

        private readonly Dictionary<string, string> _identity = methods.ToDictionary(m => m, spec.CacheIdentityFor, StringComparer.Ordinal);

        // The generation settings the cache key reads (RecordingChatClient.CacheKey), as ConverseAsync sets them.
        private readonly ChatOptions _keyOptions = new()
        {
            Temperature = spec.Generation.Temperature,
            Seed = spec.Generation.Seed,
            MaxOutputTokens = spec.Generation.MaxTokens,
        };

        /// <summary>
        /// The items of <paramref name="work"/> that are not cache answers, in order; cache answers are replayed, stored and
        /// counted on the way. Stops (throws <see cref="OperationCanceledException"/>) once <paramref name="stop"/> is cancelled.
        /// </summary>
        public async IAsyncEnumerable<(string Method, Probe Probe)> MissesAsync(IEnumerable<(string Method, Probe Probe)> work, CancellationTokenSource stop,
            [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            var chunk = new List<(string Method, Probe Probe)>(ChunkSize);
            var misses = new List<(string Method, Probe Probe)>(ChunkSize);
            Task? committing = null;
            List<(ResultRecord Row, ItemFailure? Failure)>? committingRows = null;
            int skip = 0, backoff = 1;
            using var items = work.GetEnumerator();
            try
            {
                while (true)
                {
                    chunk.Clear();
                    while (chunk.Count < ChunkSize && items.MoveNext())
                    {
                        chunk.Add(items.Current);
                    }
                    if (chunk.Count == 0)
                    {
                        break;
                    }
                    stop.Token.ThrowIfCancellationRequested();
                    cancellationToken.ThrowIfCancellationRequested();

                    misses.Clear();
                    List<(ResultRecord Row, ItemFailure? Failure)>? replayed = null;
                    if (skip > 0)
                    {
                        skip--;
                        misses.AddRange(chunk);
                    }
                    else
                    {
                        replayed = Replay(chunk, misses);
                        if (replayed.Count == 0)
                        {
                            skip = backoff;
                            backoff = Math.Min(backoff * 2, MaxSkippedChunks);
                            replayed = null;
                        }
                        else
                        {
                            backoff = 1;
                        }
                    }

                    // Queue this batch's rows, then count the previous batch once it has committed (the two overlap).
                    var (previous, previousRows) = (committing, committingRows);
                    (committing, committingRows) = replayed is null ? (null, null)
                        : (runner._store.SaveResultsAsync(replayed.ConvertAll(r => r.Row), CancellationToken.None), replayed);
                    if (previous is not null)
                    {
                        await CountWhenCommittedAsync(previous, previousRows!, stop).ConfigureAwait(false);
                    }

                    if (misses.Count > 0)
                    {
                        _reads?.End();
                    }
                    foreach (var miss in misses)
                    {
                        yield return miss;
                    }
                }

                if (committing is not null)
                {
                    var last = committing;
                    committing = null;
                    await CountWhenCommittedAsync(last, committingRows!, stop).ConfigureAwait(false);
                }
            }
            finally
            {
                _reads?.Dispose();
                _reads = null;
                // The run stopped early (cancelled, or failed elsewhere): the writer commits what was queued regardless, so
                // a batch that commits is counted; one that fails is not, and its failure does not hide the first one.
                if (committing is not null)
                {
                    await committing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    if (committing.IsCompletedSuccessfully && Count(committingRows!))
                    {
                        await stop.CancelAsync().ConfigureAwait(false);
                    }
                }
            }
        }

        /// <summary>Waits for a batch's commit (its failure propagates), then counts its rows and stops the run if they say so.</summary>
        private async Task CountWhenCommittedAsync(Task commit, List<(ResultRecord Row, ItemFailure? Failure)> rows, CancellationTokenSource stop)
        {
            await commit.ConfigureAwait(false);
            if (Count(rows))
            {
                await stop.CancelAsync().ConfigureAwait(false);
            }
        }

        /// <summary>Counts committed rows in order; true when the persistent-failure rule says the run must stop.</summary>
        private bool Count(List<(ResultRecord Row, ItemFailure? Failure)> rows)
        {
            var mustStop = false;
            Interlocked.Add(ref runner._replayed, rows.Count);
            foreach (var (row, failure) in rows)
            {
                mustStop |= counted(row, failure);
            }
            return mustStop;
        }

        /// <summary>Replays the chunk's cache answers (returned) and adds the other items to <paramref name="misses"/>.</summary>
        private List<(ResultRecord Row, ItemFailure? Failure)> Replay(List<(string Method, Probe Probe)> chunk, List<(string Method, Probe Probe)> misses)
        {
            var replayed = new List<(ResultRecord, ItemFailure?)>(chunk.Count);
            var reads = _reads ??= runner._store.BeginCacheReads();
            reads.EndIfOlderThan(SnapshotAge);
            var failed = false;
            foreach (var item in chunk)
            {
                (ResultRecord, ItemFailure?)? done = null;
                if (!failed && methods.Contains(item.Method))
                {
                    try
                    {
                        done = TryReplay(reads, item.Method, item.Probe);
                    }
                    catch (Exception)
                    {
                        // A lookup that fails (the store's file unreadable) makes this and the rest of the chunk misses: the
                        // per-item path meets the same failure and records it as that item's error, as it always did.
                        failed = true;
                    }
                }
                if (done is { } row)
                {
                    replayed.Add(row);
                }
                else
                {
                    misses.Add(item);
                }
            }
            return replayed;
        }

        /// <summary>The row the per-item path would store for an item answered wholly from the cache, or null.</summary>
        private (ResultRecord Row, ItemFailure? Failure)? TryReplay(RunStore.CacheReads reads, string method, Probe probe)
        {
            IJudge judge;
            try
            {
                judge = runner._judgeFor(probe);
            }
            catch (Exception)
            {
                return null; // the per-item path meets the same failure where it always did
            }
            var turns = probe.UserTurns;
            if (judge is not RuleBasedAnswerExtractor rule || turns.Count == 0)
            {
                return null;
            }

            var started = DateTimeOffset.UtcNow;
            var identity = _identity[method];
            var messages = new List<RecordedMessage>(2 * turns.Count) { new(ChatRole.System.Value, SystemPrompt(prompts, probe)) };
            var requests = new List<RecordedRequest>(turns.Count);
            long promptTokens = 0, completionTokens = 0;
            var reply = "";
            for (var t = 0; t < turns.Count; t++)
            {
                messages.Add(new RecordedMessage(ChatRole.User.Value, turns[t]));
                // As RecordingChatClient keys a request: earlier dialogue turns under "none", the final turn under the method.
                var recorded = new List<RecordedMessage>(messages);
                var key = RecordingChatClient.CacheKey(identity, t == turns.Count - 1 ? method : PromptingMitigations.None, probe.Suite, probe.Id, recorded, _keyOptions);
                if (reads.Get(key) is not { } hit)
                {
                    return null;
                }
                requests.Add(new RecordedRequest(recorded, hit.Text, Cached: true, hit.Details));
                promptTokens += hit.PromptTokens;
                completionTokens += hit.CompletionTokens;
                reply = hit.Text;
                messages.Add(new RecordedMessage(ChatRole.Assistant.Value, reply));
            }

            Verdict verdict;
            ItemFailure? failure = null;
            try
            {
                verdict = rule.Judge(probe, reply);
            }
            catch (Exception ex)
            {
                verdict = new Verdict(Label.JudgeError, ErrorText(ex), judge.Name);
                failure = new ItemFailure(ex, Judge: true);
            }

            return (NewRow(spec, method, probe, started) with
            {
                Requests = requests,
                Response = reply,
                Fallback = false, // a cached reply's details are strings; the fallback flag is a bool only a mitigation sets
                Verdict = verdict,
                PromptTokens = promptTokens,
                CompletionTokens = completionTokens,
                LatencyMs = 0,
                Completed = DateTimeOffset.UtcNow,
            }, failure);
        }
    }
}
