package dev.specula.engine;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Lets a caller stop a generation: the loop checks it before every model call, and a run already inside
 * ONNX Runtime is aborted through {@link OrtSession.RunOptions#setTerminate(boolean)}, so it stops within one step.
 */
public final class CancellationToken {

    private volatile boolean cancelled;
    private volatile long progressNanos = System.nanoTime();
    private final List<OrtSession.RunOptions> runs = new CopyOnWriteArrayList<>();
    private final List<CancellationToken> children = new CopyOnWriteArrayList<>();

    public void cancel() {
        cancelled = true;
        for (OrtSession.RunOptions run : runs) {
            terminate(run);
        }
        for (CancellationToken child : children) {
            child.cancel();
        }
    }

    /**
     * A token cancelled with this one (and on its own): one attempt of a request, which a time limit may
     * stop without stopping the request. Release it with {@link #release(CancellationToken)}.
     */
    public CancellationToken child() {
        CancellationToken child = new CancellationToken();
        children.add(child);
        if (cancelled) {
            child.cancel();
        }
        return child;
    }

    /** Forgets a child made by {@link #child()}. */
    public void release(CancellationToken child) {
        children.remove(child);
    }

    /** Called by the decode loop before every round: the generation is making progress. */
    void markProgress() {
        progressNanos = System.nanoTime();
    }

    /** Nanoseconds since the current round began (or since this token was made, before the first round). */
    public long nanosSinceProgress() {
        return System.nanoTime() - progressNanos;
    }

    public boolean isCancelled() {
        return cancelled;
    }

    /** Ties a sequence's run options to this token (terminated at once if already cancelled). */
    void register(OrtSession.RunOptions run) {
        runs.add(run);
        if (cancelled) {
            terminate(run);
        }
    }

    void unregister(OrtSession.RunOptions run) {
        runs.remove(run);
    }

    private static void terminate(OrtSession.RunOptions run) {
        try {
            run.setTerminate(true);
        }
        catch (OrtException | IllegalStateException ignored) {
            // the run options were closed: the run has already ended
        }
    }
}
