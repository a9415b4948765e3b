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
 * Relays a {@code Flux} of events already in their JSON shape to the client as
 * server-sent events, {@code data: {...}} each, then {@code data: [DONE]}. As
 * {@link CompletionStream} does: the controller waits for the first event
 * ({@link #awaitStart}) before it answers, so a stream that fails before it sent anything
 * gets a JSON error with its status; a failure later ends the stream with a {@code data:
 * {"error": ...}} event; when the client goes away the subscription is cancelled, which
 * stops the source (the remote's response is closed).
 */
final class JsonEventStream extends BaseSubscriber<Object> {

    private static final Logger logger = LoggerFactory.getLogger(JsonEventStream.class);

    private static final MediaType EVENT_STREAM = new MediaType("text", "event-stream", StandardCharsets.UTF_8);

    private static final String DONE = "data: [DONE]\n\n";

    private final ResponseBodyEmitter emitter;

    private final ObjectMapper json;

    /** The answer's id, for the log. */
    private final String id;

    private final String requestId;

    private final CountDownLatch started = new CountDownLatch(1);

    // Written by the Reactive Streams signals, which never overlap; read by the
    // controller after `started`.
    private volatile Throwable failedBeforeStart;

    private boolean begun;

    private volatile boolean clientGone;

    JsonEventStream(ResponseBodyEmitter emitter, ObjectMapper json, String id, String requestId) {
        this.emitter = emitter;
        this.json = json;
        this.id = id;
        this.requestId = requestId;
        emitter.onTimeout(() -> {
            logger.warn("Stream {} (request {}) timed out after {} ms: cancelled", id, requestId, emitter.getTimeout());
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
    void awaitStart(Duration timeout) {
        try {
            if (!started.await(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                logger.warn("Stream {} (request {}) sent nothing for {}: answering with an open stream", id, requestId,
                        timeout);
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
    protected void hookOnSubscribe(Subscription subscription) {
        subscription.request(Long.MAX_VALUE);
    }

    @Override
    protected void hookOnNext(Object event) {
        begin();
        send("data: " + json.writeValueAsString(event) + "\n\n");
    }

    @Override
    protected void hookOnComplete() {
        begin();
        send(DONE);
        end();
    }

    @Override
    protected void hookOnError(Throwable error) {
        if (!begun) {
            failedBeforeStart = error;
            started.countDown();
            return;
        }
        OpenAiJson.ErrorResponse body = OpenAiErrors.toResponse(error, requestId).getBody();
        send("data: " + json.writeValueAsString(body) + "\n\n");
        end();
    }

    /** On the first signal: the controller may answer. */
    private void begin() {
        if (!begun) {
            begun = true;
            started.countDown();
        }
    }

    private void send(String event) {
        if (clientGone) {
            return;
        }
        try {
            emitter.send(event.getBytes(StandardCharsets.UTF_8), EVENT_STREAM);
        }
        catch (IOException | IllegalStateException ex) {
            logger.debug("Stream {}: client gone ({}), cancelled", id, ex.toString());
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
