package dev.specula.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;

import org.jspecify.annotations.Nullable;

import dev.specula.sampling.TokenLogprob;

/**
 * One batched request's way out of the engine (vLLM's EngineCore / OutputProcessor
 * split): the batch thread appends text and, at the end, the result; a thread of the
 * engine's output executor hands them to the request's listener and future. The batch
 * thread never runs client code, so a slow or throwing listener delays and fails only its
 * own request. Delivery is serial per request, and the future completes after the last
 * text was delivered. Text that waits is joined into one delivery; so are its tokens, for
 * a listener that wants them (the pieces of one token joined into one). The prompt's
 * log-probabilities, which the batch thread hands over before any text, are delivered
 * before it too.
 */
final class OutputQueue implements TokenStreamListener {

    private final @Nullable TokenStreamListener listener;

    private final CompletableFuture<GenerationResult> future;

    private final Executor executor;

    /** Text not delivered yet; guarded by this. */
    private final StringBuilder pending = new StringBuilder();

    /** The tokens of {@link #pending}, when the listener wants them; guarded by this. */
    private final List<OutputToken> pendingTokens = new ArrayList<>();

    private final boolean wantsTokens;

    /** The prompt's log-probabilities not delivered yet; guarded by this. */
    private @Nullable List<TokenLogprob> pendingPromptLogprobs;

    private @Nullable GenerationResult result;

    private @Nullable Throwable failure;

    private boolean ended;

    private boolean draining;

    private volatile boolean listenerFailed;

    /**
     * A queue in front of one request's listener.
     * @param listener the request's listener; may be null
     * @param future completed with the result (or failure) after the last text
     * @param executor runs the deliveries
     */
    OutputQueue(@Nullable TokenStreamListener listener, CompletableFuture<GenerationResult> future, Executor executor) {
        this.listener = listener;
        this.future = future;
        this.executor = executor;
        this.wantsTokens = listener != null && listener.wantsTokens();
    }

    /** Batch thread: text for the listener. */
    @Override
    public void onText(String text) {
        onTokens(text, List.of());
    }

    @Override
    public boolean wantsTokens() {
        return wantsTokens;
    }

    /** Batch thread: text and its tokens for the listener. */
    @Override
    public void onTokens(String text, List<OutputToken> tokens) {
        if (listener == null || listenerFailed) {
            return;
        }
        synchronized (this) {
            pending.append(text);
            for (OutputToken token : tokens) {
                int last = pendingTokens.size() - 1;
                if (last >= 0 && pendingTokens.get(last).index() == token.index()) {
                    pendingTokens.set(last, pendingTokens.get(last).extendedBy(token.text()));
                }
                else {
                    pendingTokens.add(token);
                }
            }
            if (draining) {
                return;
            }
            draining = true;
        }
        schedule();
    }

    /** Batch thread: the prompt's log-probabilities, delivered before any text. */
    @Override
    public void onPromptLogprobs(List<TokenLogprob> logprobs) {
        if (listener == null || listenerFailed) {
            return;
        }
        synchronized (this) {
            pendingPromptLogprobs = logprobs;
            if (draining) {
                return;
            }
            draining = true;
        }
        schedule();
    }

    /**
     * Batch thread: the request ended; the future completes once its text is delivered.
     */
    void complete(GenerationResult generation) {
        end(generation, null);
    }

    /**
     * Batch thread: the request failed; the text produced before still goes out first.
     */
    void fail(Throwable cause) {
        end(null, cause);
    }

    /** Whether the listener threw: the request has failed and should leave the batch. */
    boolean listenerFailed() {
        return listenerFailed;
    }

    private void end(@Nullable GenerationResult generation, @Nullable Throwable cause) {
        synchronized (this) {
            if (ended) {
                return;
            }
            ended = true;
            result = generation;
            failure = cause;
            if (draining) {
                return;
            }
            draining = true;
        }
        schedule();
    }

    private void schedule() {
        try {
            executor.execute(this::drain);
        }
        catch (RejectedExecutionException ex) {
            // the engine is shutting down: no more deliveries, but the caller must not
            // wait forever
            synchronized (this) {
                pending.setLength(0);
                pendingTokens.clear();
                pendingPromptLogprobs = null;
            }
            future.completeExceptionally(new GenerationException("The engine was closed", ex));
        }
    }

    /**
     * Output thread: delivers text until none is left, then the result if the request has
     * ended.
     */
    private void drain() {
        while (true) {
            String text;
            List<OutputToken> tokens;
            List<TokenLogprob> promptLogprobs;
            synchronized (this) {
                if (pending.length() == 0 && pendingTokens.isEmpty() && pendingPromptLogprobs == null) {
                    draining = false;
                    if (!ended) {
                        return;
                    }
                    break;
                }
                text = pending.toString();
                pending.setLength(0);
                tokens = List.copyOf(pendingTokens);
                pendingTokens.clear();
                promptLogprobs = pendingPromptLogprobs;
                pendingPromptLogprobs = null;
            }
            if (!listenerFailed) {
                try {
                    if (promptLogprobs != null) {
                        listener.onPromptLogprobs(promptLogprobs);
                    }
                    if (wantsTokens && (!text.isEmpty() || !tokens.isEmpty())) {
                        listener.onTokens(text, tokens);
                    }
                    else if (!wantsTokens && !text.isEmpty()) {
                        listener.onText(text);
                    }
                }
                catch (Throwable ex) {
                    listenerFailed = true;
                    future.completeExceptionally(ex);
                }
            }
        }
        if (failure != null) {
            future.completeExceptionally(failure);
        }
        else {
            future.complete(result);
        }
    }

}
