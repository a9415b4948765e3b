package dev.specula.sample;

import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import tools.jackson.databind.ObjectMapper;

/**
 * Relays a {@code Flux} of events already in their JSON shape (the overflow remote's
 * completion chunks) to the client as server-sent events, {@code data: {...}} each, then
 * {@code data: [DONE]}; the start, failures and a client that goes away are handled as
 * for every stream ({@link EventStreamRelay}).
 */
final class JsonEventStream extends EventStreamRelay<Object> {

    JsonEventStream(ResponseBodyEmitter emitter, ObjectMapper json, String id, String requestId) {
        super(emitter, json, "Stream", id, requestId);
    }

    @Override
    protected void hookOnNext(Object event) {
        if (!begun()) {
            started();
        }
        sendJson(event);
    }

    @Override
    protected void hookOnComplete() {
        if (!begun()) {
            started();
        }
        sendDone();
    }

}
