package dev.specula.sample;

import java.util.List;

import tools.jackson.databind.JsonNode;

import dev.specula.chat.PromptTokenLimitException;
import dev.specula.engine.ContextLengthExceededException;
import dev.specula.engine.KvCapacityExceededException;
import dev.specula.request.InvalidRequestException;
import dev.specula.serving.ModelsNotReadyException;
import dev.specula.serving.ServiceBusyException;

/**
 * Which requests of one API (chat, legacy completions) the overflow remote may answer: a
 * request the local engine refused for want of room or readiness, unless it uses a field
 * only the local engine honours ({@code localOnly}) or asks how its tokens were made
 * ({@code speculation.provenance}); and a request whose {@code model} names the remote
 * model, which is refused by field when it uses one of those.
 */
final class OverflowRules {

    /** The remote model's name, {@code specula.overflow.model}. */
    private final String model;

    /** Request fields the remote request cannot carry: such requests stay local. */
    private final List<String> localOnly;

    OverflowRules(String model, List<String> localOnly) {
        this.model = model;
        this.localOnly = List.copyOf(localOnly);
    }

    String model() {
        return model;
    }

    /** Whether the request's {@code model} is the remote model's name. */
    boolean isNamedIn(JsonNode body) {
        JsonNode requested = body == null ? null : body.get("model");
        return requested != null && requested.isString() && model.equals(requested.asString());
    }

    /**
     * Whether a request that failed locally with {@code failure} goes to the remote: the
     * local engine is full ({@link #isLocalShortfall}), and the request uses no
     * local-only field.
     */
    boolean takes(RuntimeException failure, JsonNode body) {
        return isLocalShortfall(failure) && localOnly.stream().noneMatch(body::has) && !asksProvenance(body);
    }

    /**
     * Whether {@code failure} says the local engine cannot take the request, where a
     * remote could: it is full (429 busy, queue full, KV memory), not ready (503), or the
     * prompt is over its context, its prompt-token limit or its KV capacity. Not the
     * caller's mistakes, nor our bugs: the remote would refuse or fail those too.
     */
    static boolean isLocalShortfall(RuntimeException failure) {
        return failure instanceof ServiceBusyException || failure instanceof ModelsNotReadyException
                || failure instanceof ContextLengthExceededException || failure instanceof PromptTokenLimitException
                || failure instanceof KvCapacityExceededException;
    }

    /**
     * Refuses, naming the field, a request for the remote model that uses a local-only
     * field or asks for provenance.
     */
    void checkPortable(JsonNode body) {
        for (String field : localOnly) {
            if (body.has(field)) {
                throw new InvalidRequestException(field, "unsupported_parameter",
                        field + " is not supported for '" + model
                                + "', the overflow model: only the local model's requests may use it (leave " + field
                                + " out, or leave model out to use the local model)");
            }
        }
        if (asksProvenance(body)) {
            throw new InvalidRequestException("speculation.provenance", "unsupported_parameter",
                    "speculation.provenance is not supported for '" + model
                            + "', the overflow model: only the local engine tells how its tokens were made (leave "
                            + "speculation.provenance out, or leave model out to use the local model)");
        }
    }

    /** Whether the request asks how its tokens were made: the local engine's alone. */
    private static boolean asksProvenance(JsonNode body) {
        JsonNode provenance = body.path("speculation").path("provenance");
        return provenance.isBoolean() && provenance.booleanValue();
    }

}
