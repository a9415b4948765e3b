package dev.specula.serving;

import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.function.Supplier;

import dev.specula.engine.ModelPair;

/**
 * The model pair a service runs on: loaded already, or loading in the background so an
 * application can start (and report "loading") before the sessions exist.
 */
public final class ModelPairHandle implements AutoCloseable {

    /** Where loading stands. */
    public enum State {

        LOADING, READY, FAILED

    }

    private final CompletableFuture<ModelPair> pair;

    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();

    private ModelPairHandle(CompletableFuture<ModelPair> pair) {
        this.pair = pair;
    }

    public static ModelPairHandle ready(ModelPair pair) {
        return new ModelPairHandle(CompletableFuture.completedFuture(pair));
    }

    /**
     * Starts {@code loader} on {@code executor}; requests fail with
     * {@link ModelsNotReadyException} until it is done.
     */
    public static ModelPairHandle loading(Supplier<ModelPair> loader, Executor executor) {
        return new ModelPairHandle(CompletableFuture.supplyAsync(loader, executor));
    }

    public State state() {
        if (!pair.isDone()) {
            return State.LOADING;
        }
        return pair.isCompletedExceptionally() ? State.FAILED : State.READY;
    }

    /** The loaded pair. */
    public ModelPair get() {
        if (!pair.isDone()) {
            throw new ModelsNotReadyException("The models are still loading; retry in a few seconds", null, false);
        }
        try {
            return pair.join();
        }
        catch (CompletionException ex) {
            Throwable cause = ex.getCause() != null ? ex.getCause() : ex;
            throw new ModelsNotReadyException("The models failed to load: " + cause.getMessage(), cause, true);
        }
    }

    /** Why loading failed, if it did. */
    public Optional<Throwable> failure() {
        if (state() != State.FAILED) {
            return Optional.empty();
        }
        try {
            pair.join();
            return Optional.empty();
        }
        catch (CompletionException ex) {
            return Optional.of(ex.getCause() != null ? ex.getCause() : ex);
        }
    }

    /** Waits for loading to end (either way). */
    public void await() {
        try {
            pair.join();
        }
        catch (CompletionException ignored) {
            // reported by get() and failure()
        }
    }

    /** Closes the models once loaded (at once if they are); later calls do nothing. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            pair.thenAccept(ModelPair::close);
        }
    }

}
