package dev.specula.engine;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

/**
 * Lets a caller stop a generation: the loop checks it before every model call, and a run
 * already inside ONNX Runtime is aborted through
 * {@link OrtSession.RunOptions#setTerminate(boolean)}, so it stops within one step.
 */
public final class CancellationToken {

    private volatile boolean cancelled;

    private final List<OrtSession.RunOptions> runs = new CopyOnWriteArrayList<>();

    public void cancel() {
        cancelled = true;
        for (OrtSession.RunOptions run : runs) {
            terminate(run);
        }
    }

    public boolean isCancelled() {
        return cancelled;
    }

    /**
     * Ties a sequence's run options to this token (terminated at once if already
     * cancelled).
     */
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
