package dev.specula.sample;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.reactivestreams.Subscription;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.MediaType;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import reactor.core.publisher.BaseSubscriber;
import tools.jackson.databind.ObjectMapper;

/**
 * A server-sent event stream of the gateway: what every one does around its own events
 * ({@link CompletionStream}, {@link TextCompletionStream}, {@link JsonEventStream}).
 *
 * <pre>
 * start     the controller waits for the first event ({@link #awaitStart}) before it answers, so a stream that
 *           fails before it sent anything gets a JSON error with its status
 * events    {@code data: {...}} each ({@link #sendJson}), then {@code data: [DONE]} ({@link #sendDone})
 * failure   after the start: a {@code data: {"error": ...}} event ends the stream
 * client    gone (a write fails, the connection errors or times out): the subscription is cancelled, which
 *           stops the source (the generation, or the remote's response)
 * </pre>
 *
 * @param <T> what the source emits
 */
abstract class EventStreamRelay<T> extends BaseSubscriber<T> {

    private static final Logger logger = LoggerFactory.getLogger(EventStreamRelay.class);

    private static final MediaType EVENT_STREAM = new MediaType("text", "event-stream", StandardCharsets.UTF_8);

    private static final String DONE = "data: [DONE]\n\n";

    private final ResponseBodyEmitter emitter;

    private final ObjectMapper json;

    /** What the stream is, for the log: "Chat completion stream", ... */
    private final String what;

    /** The answer's id. */
    protected final String id;

    protected final String requestId;

    private final CountDownLatch started = new CountDownLatch(1);

    // Written by the Reactive Streams signals, which never overlap; read by the
    // controller after `started`.
    private volatile Throwable failedBeforeStart;

    private boolean begun;

    private volatile boolean clientGone;

    EventStreamRelay(ResponseBodyEmitter emitter, ObjectMapper json, String what, String id, String requestId) {
        this.emitter = emitter;
        this.json = json;
        this.what = what;
        this.id = id;
        this.requestId = requestId;
        emitter.onTimeout(() -> {
            logger.warn("{} {} (request {}) timed out after {} ms: cancelled", what, id, requestId,
                    emitter.getTimeout());
            clientGone();
            emitter.complete();
        });
        emitter.onError((error) -> clientGone());
        emitter.onCompletion(this::clientGone);
    }

    /**
     * Waits until the stream has its first event (or ended), at most {@code timeout}.
     * @throws RuntimeException the source's error, when it failed before it sent anything
     */
    final void awaitStart(Duration timeout) {
        try {
            if (!started.await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                logger.warn("{} {} (request {}) sent nothing for {}: answering with an open stream", what, id,
                        requestId, timeout);
            }
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            cancel();
            throw new IllegalStateException("Interrupted while waiting for the first event", ex);
        }
        Throwable failure = failedBeforeStart;
        if (failure instanceof RuntimeException runtime) {
            throw runtime;
        }
        if (failure instanceof Error error) {
            throw error;
        }
        if (failure != null) {
            throw new IllegalStateException(failure.getMessage(), failure);
        }
    }

    @Override
    protected final void hookOnSubscribe(Subscription subscription) {
        subscription.request(Long.MAX_VALUE);
    }

    @Override
    protected final void hookOnError(Throwable error) {
        if (!begun) {
            failedBeforeStart = error;
            started.countDown();
            return;
        }
        sendJson(OpenAiErrors.toResponse(error, requestId).getBody());
        end();
    }

    /** Whether the stream has started ({@link #started}). */
    protected final boolean begun() {
        return begun;
    }

    /** The stream has its first event: the controller may answer. */
    protected final void started() {
        begun = true;
        started.countDown();
    }

    /** Sends {@code body} as one event, {@code data: {...}}. */
    protected final void sendJson(Object body) {
        send("data: " + json.writeValueAsString(body) + "\n\n");
    }

    /** Sends {@code data: [DONE]} and ends the response. */
    protected final void sendDone() {
        send(DONE);
        end();
    }

    private void send(String event) {
        if (clientGone) {
            return;
        }
        try {
            emitter.send(event.getBytes(StandardCharsets.UTF_8), EVENT_STREAM);
        }
        catch (IOException | IllegalStateException ex) {
            logger.debug("{} {}: client gone ({}), cancelled", what, id, ex.toString());
            clientGone();
        }
    }

    /**
     * Ends the response, unless the client is gone already (then the container ends it).
     */
    private void end() {
        if (!clientGone) {
            emitter.complete();
        }
    }

    /** Stops the source: the client will read no more. */
    private void clientGone() {
        clientGone = true;
        cancel();
    }

}
