package dev.specula.sample;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionChoice;
import com.openai.models.completions.CompletionUsage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.CacheControl;
import org.springframework.http.HttpHeaders;
import org.springframework.http.ResponseEntity;
import org.springframework.web.servlet.mvc.method.annotation.ResponseBodyEmitter;
import reactor.core.publisher.Flux;
import tools.jackson.databind.ObjectMapper;

import dev.specula.request.InvalidRequestException;

/**
 * Legacy completions answered by the overflow remote ({@link CompletionOverflow}), in the
 * same shapes as local ones ({@link TextCompletionJson}): a {@code text_completion}, or
 * an event stream of them ending with {@code data: [DONE]}, named by the remote model,
 * with {@code X-Specula-Backend: overflow} and {@code speculation.backend} (a stream: on
 * its {@code finish_reason} event). The caller's tokens per minute are charged with the
 * remote's usage ({@link OverflowCharge}).
 */
final class OverflowCompletionResponses {

    private static final Logger logger = LoggerFactory.getLogger(OverflowCompletionResponses.class);

    private static final Map<String, Object> OVERFLOW = Backends.speculation(null, Backends.OVERFLOW);

    private final CompletionOverflow overflow;

    private final ObjectMapper json;

    OverflowCompletionResponses(CompletionOverflow overflow, ObjectMapper json) {
        this.overflow = overflow;
        this.json = json;
    }

    /**
     * The remote's answer to a request the local engine refused with {@code local}; when
     * the remote fails too (or its breaker is open) {@code local} is thrown again, so the
     * client gets the refusal it got before overflow existed, and the request costs
     * nothing.
     */
    ResponseEntity<?> answerOr(RuntimeException local, CompletionRequest request, int maxTokens, String id,
            long created, String requestId, OverflowCharge charge) {
        try {
            return answer(request, maxTokens, id, created, requestId, charge);
        }
        catch (RuntimeException remote) {
            charge.refund();
            logger.debug("Completion {} (request {}): overflow failed ({}), answering the local refusal", id, requestId,
                    remote.toString());
            local.addSuppressed(remote);
            throw local;
        }
    }

    /**
     * The remote's answer to a request for the overflow model.
     * @throws InvalidRequestException when the remote refused the request as the caller's
     * mistake ({@link RemoteRefusal})
     * @throws OverflowUnavailableException when the remote fails or its breaker is open
     */
    ResponseEntity<?> answerRemote(CompletionRequest request, int maxTokens, String id, long created, String requestId,
            OverflowCharge charge) {
        try {
            return answer(request, maxTokens, id, created, requestId, charge);
        }
        catch (RuntimeException remote) {
            charge.refund();
            InvalidRequestException refused = RemoteRefusal.toInvalidRequest(overflow.model(), remote);
            throw refused != null ? refused : new OverflowUnavailableException(overflow.model(), remote);
        }
    }

    /**
     * The remote's answer: whole, or streamed once its first event has come; its usage
     * settles {@code charge}.
     */
    private ResponseEntity<?> answer(CompletionRequest request, int maxTokens, String id, long created,
            String requestId, OverflowCharge charge) {
        if (!request.stream()) {
            Completion completion = overflow.call(request, maxTokens);
            CompletionChoice remote = completion.choices().isEmpty() ? null : completion.choices().get(0);
            String text = remote == null ? "" : remote.text();
            charge.sent(text);
            OpenAiJson.Usage usage = completion.usage().map(OverflowCompletionResponses::usage).orElse(null);
            charge.settle(usage == null ? 0 : usage.totalTokens());
            String finishReason = remote == null ? null : finishReason(remote);
            TextCompletionJson.Choice choice = new TextCompletionJson.Choice(text, 0, null,
                    finishReason != null ? finishReason : "stop");
            return ResponseEntity.ok()
                .header(Backends.HEADER, Backends.OVERFLOW)
                .body(new TextCompletionJson.TextCompletion(id, TextCompletionJson.TEXT_COMPLETION, created,
                        overflow.model(), List.of(choice), usage != null ? usage : charge.estimatedUsage(), OVERFLOW));
        }
        ResponseBodyEmitter emitter = new ResponseBodyEmitter(ChatCompletionsController.STREAM_TIMEOUT.toMillis());
        JsonEventStream stream = new JsonEventStream(emitter, json, id, requestId);
        events(overflow.stream(request, maxTokens), new Events(id, created, overflow.model(), request.includeUsage()),
                charge)
            .subscribe(stream);
        stream.awaitStart(ChatCompletionsController.STREAM_TIMEOUT);
        return ResponseEntity.ok()
            .header(HttpHeaders.CONTENT_TYPE, "text/event-stream;charset=UTF-8")
            .cacheControl(CacheControl.noCache())
            .header("X-Accel-Buffering", "no")
            .header(Backends.HEADER, Backends.OVERFLOW)
            .body(emitter);
    }

    /**
     * The remote's stream as this gateway's events: each piece of text; a
     * {@code finish_reason} event with {@code speculation.backend}; and, when the remote
     * has ended, the charge settled with its usage (a stream the client left settles
     * nothing) and, if the client asked, a usage event: the remote's, else estimated.
     */
    static Flux<TextCompletionJson.TextCompletion> events(Flux<Completion> chunks, Events shape,
            OverflowCharge charge) {
        AtomicReference<OpenAiJson.Usage> reported = new AtomicReference<>();
        AtomicBoolean finished = new AtomicBoolean();
        return chunks.concatMapIterable((chunk) -> {
            chunk.usage().map(OverflowCompletionResponses::usage).ifPresent(reported::set);
            List<TextCompletionJson.TextCompletion> events = new ArrayList<>();
            for (CompletionChoice choice : chunk.choices()) {
                charge.sent(choice.text());
                if (!choice.text().isEmpty()) {
                    events.add(shape.of(new TextCompletionJson.Choice(choice.text(), 0, null, null), null, null));
                }
                String finishReason = finishReason(choice);
                if (finishReason != null && finished.compareAndSet(false, true)) {
                    events.add(shape.of(new TextCompletionJson.Choice("", 0, null, finishReason), null, OVERFLOW));
                }
            }
            return events;
        }).concatWith(Flux.defer(() -> {
            List<TextCompletionJson.TextCompletion> last = new ArrayList<>();
            if (finished.compareAndSet(false, true)) {
                last.add(shape.of(new TextCompletionJson.Choice("", 0, null, "stop"), null, OVERFLOW));
            }
            OpenAiJson.Usage usage = reported.get();
            charge.settle(usage == null ? 0 : usage.totalTokens());
            if (shape.includeUsage()) {
                last.add(shape.of(null, usage != null ? usage : charge.estimatedUsage(), null));
            }
            return Flux.fromIterable(last);
        }));
    }

    /** The remote's finish reason ("stop", "length"); null while a stream goes on. */
    private static String finishReason(CompletionChoice choice) {
        return choice._finishReason().asKnown().map(CompletionChoice.FinishReason::asString).orElse(null);
    }

    private static OpenAiJson.Usage usage(CompletionUsage usage) {
        return new OpenAiJson.Usage(Math.toIntExact(usage.promptTokens()), Math.toIntExact(usage.completionTokens()),
                Math.toIntExact(usage.totalTokens()), null);
    }

    /**
     * What every event of one answer shares: its id, creation time and model, and whether
     * it ends with a usage event.
     */
    record Events(String id, long created, String model, boolean includeUsage) {

        /** An event with {@code choice} (none when null), and the usage and figures. */
        TextCompletionJson.TextCompletion of(TextCompletionJson.Choice choice, OpenAiJson.Usage usage,
                Map<String, Object> speculation) {
            return new TextCompletionJson.TextCompletion(id, TextCompletionJson.TEXT_COMPLETION, created, model,
                    choice == null ? List.of() : List.of(choice), usage, speculation);
        }

    }

}
