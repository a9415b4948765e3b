package dev.specula.chat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.observation.tck.TestObservationRegistry;
import io.micrometer.observation.tck.TestObservationRegistryAssert;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.messages.SystemMessage;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.observation.conventions.AiObservationAttributes;

import dev.specula.Fixtures;
import dev.specula.engine.OutputToken;
import dev.specula.engine.TokenKind;
import dev.specula.request.InvalidRequestException;
import dev.specula.serving.BatchingSettings;
import dev.specula.serving.GenerationService;
import dev.specula.serving.GoodputSettings;
import dev.specula.serving.ModelPairHandle;
import dev.specula.serving.ModelsNotReadyException;
import dev.specula.serving.ResponseCacheSettings;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The Spring AI ChatModel on the embedded pair, through ChatClient as an application uses
 * it.
 */
class SpeculaChatModelTest {

    private static final String QUESTION = "Write a function that returns the largest of three numbers.";

    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    private static ModelPairHandle models;

    private static GenerationService service;

    private static TestObservationRegistry observations;

    private static SpeculaChatModel chatModel;

    @BeforeAll
    static void start() {
        // no response cache: streamed and called answers must both be decoded
        models = ModelPairHandle.ready(Fixtures.embeddedModels());
        service = GenerationService.builder(models)
            .responseCache(ResponseCacheSettings.disabled())
            .goodput(GoodputSettings.disabled())
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .build();
        observations = TestObservationRegistry.create();
        chatModel = SpeculaChatModel.builder()
            .service(service)
            .modelName("specula-tiny")
            .defaultOptions(SpeculaChatOptions.builder().temperature(0.0).maxTokens(48).build())
            .observationRegistry(observations)
            .build();
    }

    @AfterAll
    static void stop() {
        service.close();
        models.close();
    }

    /**
     * maxPromptTokens: a prompt a few tokens over is counted and refused; one whose
     * characters alone prove it over is refused before the tokenizer runs ("at least");
     * one under it is answered, and mutate() keeps the other settings.
     */
    @Test
    void refusesPromptsOverMaxPromptTokensCountedOrFromTheirCharactersAlone() {
        SpeculaChatModel limited = chatModel.mutate().maxPromptTokens(32).build();
        int perToken = models.get().target().tokenizer().maxCharactersPerToken();
        assertThat(perToken).isPositive();

        Prompt counted = new Prompt(new UserMessage("def add(a, b):\n    return a + b\n".repeat(12)));
        assertThatThrownBy(() -> limited.call(counted))
            .isInstanceOfSatisfying(PromptTokenLimitException.class, (ex) -> {
                assertThat(ex.isCounted()).isTrue();
                assertThat(ex.getPromptTokens()).isGreaterThan(32);
                assertThat(ex.getLimit()).isEqualTo(32);
                assertThat(ex.isContextLength()).isFalse();
                assertThat(ex.getField()).isEqualTo("messages");
                assertThat(ex.getCode()).isEqualTo("context_length_exceeded");
            })
            .hasMessageContaining("maxPromptTokens");

        Prompt huge = new Prompt(new UserMessage("x".repeat(32 * perToken + 1)));
        assertThatThrownBy(() -> limited.stream(huge).blockLast(TIMEOUT))
            .isInstanceOfSatisfying(PromptTokenLimitException.class, (ex) -> {
                assertThat(ex.isCounted()).isFalse();
                assertThat(ex.getPromptTokens()).isEqualTo(33);
            })
            .hasMessageContaining("at least 33 tokens");

        ChatResponse answered = limited
            .call(new Prompt(new UserMessage("def f():"), SpeculaChatOptions.builder().maxTokens(4).build()));
        assertThat(answered.getMetadata().getUsage().getPromptTokens()).isBetween(1, 32);
        assertThat(limited.getModelName()).isEqualTo(chatModel.getModelName());
        assertThat(limited.getOptions().getTemperature()).isEqualTo(0.0);
    }

    /** Without maxPromptTokens the limit is the context length, checked the same way. */
    @Test
    void refusesPromptsOverTheContextLengthBeforeTokenizing() {
        int context = models.get().target().contextLength();
        int perToken = models.get().target().tokenizer().maxCharactersPerToken();
        Prompt huge = new Prompt(new UserMessage("y".repeat(context * perToken + perToken)));
        assertThatThrownBy(() -> chatModel.call(huge)).isInstanceOfSatisfying(PromptTokenLimitException.class, (ex) -> {
            assertThat(ex.isContextLength()).isTrue();
            assertThat(ex.getLimit()).isEqualTo(context);
            assertThat(ex.isCounted()).isFalse();
        }).hasMessageContaining("context length");
    }

    /** A call whose token is cancelled ends at once with what it had, "cancelled". */
    @Test
    void aCancelledCallStopsWithFinishReasonCancelled() {
        dev.specula.engine.CancellationToken cancellation = new dev.specula.engine.CancellationToken();
        cancellation.cancel();
        ChatResponse response = chatModel.call(
                new Prompt(new UserMessage("class Foo:"), SpeculaChatOptions.builder().maxTokens(1500).build()),
                cancellation);
        assertThat(response.getResult().getMetadata().getFinishReason()).isEqualTo("cancelled");
        assertThat(response.getMetadata().getUsage().getCompletionTokens()).isLessThan(1500);
    }

    @Test
    void chatClientCallReturnsTextUsageAndSpeculationFigures() {
        ChatResponse response = ChatClient.create(chatModel)
            .prompt()
            .system("You write Python.")
            .user(QUESTION)
            .call()
            .chatResponse();

        assertThat(response.getResult().getOutput().getText()).isNotBlank();
        assertThat(response.getResult().getMetadata().getFinishReason()).isIn("stop", "length");
        assertThat(response.getMetadata().getUsage().getPromptTokens()).isPositive();
        assertThat(response.getMetadata().getUsage().getCompletionTokens()).isBetween(1, 48);
        assertThat(response.getMetadata().getModel()).isEqualTo("specula-tiny");
        assertThat((String) response.getMetadata().get(SpeculaChatModel.METADATA_POLICY)).isEqualTo("fixed");
        assertThat((Long) response.getMetadata().get(SpeculaChatModel.METADATA_DRAFTED)).isPositive();
        assertThat((Long) response.getMetadata().get(SpeculaChatModel.METADATA_ACCEPTED)).isPositive();
        assertThat((Double) response.getMetadata().get(SpeculaChatModel.METADATA_MEAN_ACCEPTED_LENGTH))
            .isGreaterThan(1.0);
        assertThat((Boolean) response.getMetadata().get(SpeculaChatModel.METADATA_FALLBACK)).isFalse();

        TestObservationRegistryAssert.assertThat(observations)
            .hasObservationWithNameEqualTo("gen_ai.client.operation")
            .that()
            .hasLowCardinalityKeyValue(AiObservationAttributes.AI_PROVIDER.value(), SpeculaChatModel.PROVIDER)
            .hasBeenStopped();
    }

    @Test
    void chatClientStreamSendsTheSameTextAsCall() {
        String called = ChatClient.create(chatModel).prompt().user(QUESTION).call().content();
        List<String> chunks = ChatClient.create(chatModel)
            .prompt()
            .user(QUESTION)
            .stream()
            .content()
            .collectList()
            .block(Duration.ofSeconds(60));

        assertThat(chunks).hasSizeGreaterThan(1);
        assertThat(String.join("", chunks)).isEqualTo(called);
    }

    @Test
    void theLastStreamedResponseCarriesFinishReasonUsageAndFigures() {
        List<ChatResponse> responses = chatModel.stream(new Prompt(new UserMessage(QUESTION)))
            .collectList()
            .block(Duration.ofSeconds(60));
        ChatResponse last = responses.get(responses.size() - 1);

        assertThat(last.getResult().getOutput().getText()).isEmpty();
        assertThat(last.getResult().getMetadata().getFinishReason()).isIn("stop", "length");
        assertThat(last.getMetadata().getUsage().getCompletionTokens()).isPositive();
        assertThat((Long) last.getMetadata().get(SpeculaChatModel.METADATA_DRAFTED)).isPositive();
    }

    /**
     * Provenance: each streamed chunk carries the tokens of its text and how each was
     * made; a call carries them all, one per token; a stream that does not ask carries
     * none.
     */
    @Test
    void withProvenanceEachChunkTellsHowItsTokensWereMade() {
        SpeculaChatOptions asking = SpeculaChatOptions.builder().policy("fixed:4").provenance(true).build();
        List<ChatResponse> chunks = chatModel.stream(new Prompt(new UserMessage(QUESTION), asking))
            .collectList()
            .block(TIMEOUT);
        ChatResponse called = chatModel.call(new Prompt(new UserMessage(QUESTION), asking));

        StringBuilder text = new StringBuilder();
        List<OutputToken> streamed = new ArrayList<>();
        for (ChatResponse chunk : chunks.subList(0, chunks.size() - 1)) {
            List<OutputToken> tokens = chunk.getResult().getMetadata().get(SpeculaChatModel.METADATA_TOKENS);
            assertThat(tokens).as("every text chunk has its tokens").isNotEmpty();
            assertThat(String.join("", tokens.stream().map(OutputToken::text).toList()))
                .isEqualTo(chunk.getResult().getOutput().getText());
            text.append(chunk.getResult().getOutput().getText());
            streamed.addAll(tokens);
        }
        String answer = called.getResult().getOutput().getText();
        assertThat(text.toString()).isEqualTo(answer);
        List<OutputToken> whole = called.getResult().getMetadata().get(SpeculaChatModel.METADATA_TOKENS);
        assertThat(whole).hasSize(called.getMetadata().getUsage().getCompletionTokens());
        assertThat(String.join("", whole.stream().map(OutputToken::text).toList())).isEqualTo(answer);
        // greedy: the stream decoded the same tokens, the same way
        assertThat(streamed.stream().map(OutputToken::index).distinct().toList())
            .isEqualTo(whole.stream().map(OutputToken::index).toList());
        assertThat(whole).extracting(OutputToken::kind).contains(TokenKind.ACCEPTED);
        assertThat(whole.stream().filter((token) -> token.kind() == TokenKind.ACCEPTED).count())
            .isLessThanOrEqualTo((Long) called.getMetadata().get(SpeculaChatModel.METADATA_ACCEPTED));

        List<ChatResponse> plain = chatModel.stream(new Prompt(new UserMessage(QUESTION))).collectList().block(TIMEOUT);
        assertThat(plain).allSatisfy(
                (chunk) -> assertThat((Object) chunk.getResult().getMetadata().get(SpeculaChatModel.METADATA_TOKENS))
                    .isNull());
    }

    /**
     * A replayed answer has no decoding to tell: a request with provenance is decoded
     * even when the cache holds its answer.
     */
    @Test
    void provenanceIsNeverAnsweredFromTheCache() {
        GenerationService cachedService = GenerationService.builder(models)
            .goodput(GoodputSettings.disabled())
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .build();
        try {
            SpeculaChatModel cached = model(cachedService);
            Prompt asking = new Prompt(QUESTION, SpeculaChatOptions.builder().maxTokens(12).provenance(true).build());
            cached.call(new Prompt(QUESTION, SpeculaChatOptions.builder().maxTokens(12).build()));
            ChatResponse first = cached.call(asking);
            ChatResponse second = cached.call(asking);

            assertThat(cachedService.snapshot().cacheHits()).isZero();
            assertThat((Boolean) second.getMetadata().get(SpeculaChatModel.METADATA_CACHED)).isFalse();
            assertThat((List<?>) second.getResult().getMetadata().get(SpeculaChatModel.METADATA_TOKENS))
                .hasSize(second.getMetadata().getUsage().getCompletionTokens())
                .isEqualTo(first.getResult().getMetadata().get(SpeculaChatModel.METADATA_TOKENS));
        }
        finally {
            cachedService.close();
        }
    }

    @Test
    void aTokenPromptIsReadAsItIsWithoutTheChatTemplate() {
        String code = "def fibonacci(n):\n    ";
        int[] ids = models.get().target().tokenizer().encode(code, true);

        ChatResponse called = chatModel.callTokens(ids, SpeculaChatOptions.builder().maxTokens(24).build());
        List<ChatResponse> streamed = chatModel.streamTokens(ids, SpeculaChatOptions.builder().maxTokens(24).build())
            .collectList()
            .block(TIMEOUT);
        ChatResponse templated = chatModel.call(new Prompt(code, ChatOptions.builder().maxTokens(24).build()));

        assertThat(called.getMetadata().getUsage().getPromptTokens()).as("the ids alone, no template around them")
            .isEqualTo(ids.length)
            .isLessThan(templated.getMetadata().getUsage().getPromptTokens());
        assertThat(called.getResult().getOutput().getText()).isNotBlank();
        assertThat(called.getResult().getMetadata().getFinishReason()).isIn("stop", "length");
        assertThat((String) called.getMetadata().get(SpeculaChatModel.METADATA_POLICY)).isNotBlank();
        StringBuilder text = new StringBuilder();
        streamed.forEach((response) -> text.append(response.getResult().getOutput().getText()));
        assertThat(text.toString()).isEqualTo(called.getResult().getOutput().getText());
        ChatResponse last = streamed.get(streamed.size() - 1);
        assertThat(last.getResult().getMetadata().getFinishReason()).isIn("stop", "length");
        assertThat(last.getMetadata().getUsage().getPromptTokens()).isEqualTo(ids.length);
    }

    @Test
    void aTokenPromptRefusesToolsAndIdsOutsideTheVocabulary() {
        int[] ids = models.get().target().tokenizer().encode("import os", true);
        SpeculaChatOptions withTools = SpeculaChatOptions.builder()
            .toolCallbacks(SpeculaChatModelToolsTest.weatherTool("currentWeather"))
            .build();

        assertThatThrownBy(() -> chatModel.callTokens(ids, withTools)).isInstanceOfSatisfying(
                InvalidRequestException.class, (ex) -> assertThat(ex.getField()).isEqualTo("tools"));
        assertThatThrownBy(() -> chatModel.callTokens(new int[] { 1, 1 << 20 }, null))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("promptIds"))
            .hasMessageContaining(Integer.toString(1 << 20));
        assertThatThrownBy(() -> chatModel.streamTokens(new int[0], null).blockLast(TIMEOUT)).isInstanceOfSatisfying(
                InvalidRequestException.class, (ex) -> assertThat(ex.getField()).isEqualTo("promptIds"));
    }

    @Test
    void requestOptionsOverrideTheDefaults() {
        ChatResponse shortAnswer = chatModel.call(new Prompt(QUESTION, ChatOptions.builder().maxTokens(3).build()));
        assertThat(shortAnswer.getMetadata().getUsage().getCompletionTokens()).isEqualTo(3);
        assertThat(shortAnswer.getResult().getMetadata().getFinishReason()).isEqualTo("length");

        ChatResponse plain = chatModel
            .call(new Prompt(QUESTION, SpeculaChatOptions.builder().speculation(false).build()));
        ChatResponse speculative = chatModel
            .call(new Prompt(QUESTION, SpeculaChatOptions.builder().policy("fixed:2").build()));
        assertThat((String) plain.getMetadata().get(SpeculaChatModel.METADATA_POLICY)).isEqualTo("plain");
        assertThat((Long) plain.getMetadata().get(SpeculaChatModel.METADATA_DRAFTED)).isZero();
        // lossless: greedy speculation writes exactly what the target alone writes
        assertThat(speculative.getResult().getOutput().getText()).isEqualTo(plain.getResult().getOutput().getText());

        SpeculaChatOptions merged = SpeculaChatOptions.merge(ChatOptions.builder().temperature(0.7).build(),
                (SpeculaChatOptions) chatModel.getOptions());
        assertThat(merged.getTemperature()).isEqualTo(0.7);
        assertThat(merged.getMaxTokens()).isEqualTo(48);
    }

    @Test
    void theProposerIsChosenPerRequestAndReported() {
        ChatResponse plain = chatModel
            .call(new Prompt(QUESTION, SpeculaChatOptions.builder().speculation(false).build()));
        ChatResponse byDefault = chatModel.call(new Prompt(QUESTION));
        ChatResponse lookedUp = ChatClient.create(chatModel)
            .prompt()
            .user(QUESTION)
            .options(SpeculaChatOptions.builder().proposer("ngram"))
            .call()
            .chatResponse();

        assertThat((String) byDefault.getMetadata().get(SpeculaChatModel.METADATA_PROPOSER)).isEqualTo("model");
        assertThat((String) lookedUp.getMetadata().get(SpeculaChatModel.METADATA_PROPOSER)).isEqualTo("ngram");
        assertThat(plain.getMetadata().containsKey(SpeculaChatModel.METADATA_PROPOSER)).isFalse();
        assertThat(lookedUp.getResult().getOutput().getText()).isEqualTo(plain.getResult().getOutput().getText());
        assertThatThrownBy(
                () -> chatModel.call(new Prompt(QUESTION, SpeculaChatOptions.builder().proposer("eagle").build())))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("proposer"));
        // a known proposer, but no feature head is loaded
        assertThatThrownBy(
                () -> chatModel.call(new Prompt(QUESTION, SpeculaChatOptions.builder().proposer("griffin").build())))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("speculation.proposer"))
            .hasMessageContaining("specula.griffin.location");
    }

    @Test
    void aPredictionIsTheDraftAndItsTokensAreCounted() {
        String answer = chatModel.call(new Prompt(QUESTION, SpeculaChatOptions.builder().speculation(false).build()))
            .getResult()
            .getOutput()
            .getText();
        ChatResponse predicted = ChatClient.create(chatModel)
            .prompt()
            .user(QUESTION)
            .options(SpeculaChatOptions.builder().prediction(answer))
            .call()
            .chatResponse();

        assertThat(predicted.getResult().getOutput().getText()).isEqualTo(answer);
        assertThat((String) predicted.getMetadata().get(SpeculaChatModel.METADATA_PROPOSER)).isEqualTo("prediction");
        assertThat((Long) predicted.getMetadata().get(SpeculaChatModel.METADATA_ACCEPTED_PREDICTION_TOKENS))
            .isGreaterThan(predicted.getMetadata().getUsage().getCompletionTokens() / 2);
        assertThatThrownBy(() -> chatModel
            .call(new Prompt(QUESTION, SpeculaChatOptions.builder().prediction(answer).speculation(false).build())))
            .isInstanceOfSatisfying(InvalidRequestException.class,
                    (ex) -> assertThat(ex.getField()).isEqualTo("prediction"));
    }

    @Test
    void chatClientOptionsReachTheModel() {
        ChatResponse viaClient = ChatClient.create(chatModel)
            .prompt()
            .user(QUESTION)
            .options(SpeculaChatOptions.builder().maxTokens(5).speculation(false))
            .call()
            .chatResponse();
        assertThat(viaClient.getMetadata().getUsage().getCompletionTokens()).isEqualTo(5);
        assertThat((String) viaClient.getMetadata().get(SpeculaChatModel.METADATA_POLICY)).isEqualTo("plain");
        ChatResponse portable = ChatClient.create(chatModel)
            .prompt()
            .user(QUESTION)
            .options(ChatOptions.builder().maxTokens(4))
            .call()
            .chatResponse();
        assertThat(portable.getMetadata().getUsage().getCompletionTokens()).isEqualTo(4);
    }

    /**
     * Spring AI's order: per-call options ({@code .options(...)}) and a Prompt's options
     * over the ChatClient's defaults, those over the model's own defaults (here 48
     * tokens, speculating).
     */
    @Test
    void chatClientMergesPromptAndPerCallOptionsOverItsDefaults() {
        ChatClient client = ChatClient.builder(chatModel)
            .defaultOptions(SpeculaChatOptions.builder().maxTokens(20).speculation(false))
            .build();

        ChatResponse defaults = client.prompt().user(QUESTION).call().chatResponse();
        assertTokensAndPolicy(defaults, 20, "plain");

        ChatResponse prompt = client.prompt(new Prompt(QUESTION, SpeculaChatOptions.builder().maxTokens(5).build()))
            .call()
            .chatResponse();
        assertTokensAndPolicy(prompt, 5, "plain");

        ChatResponse portablePrompt = client.prompt(new Prompt(QUESTION, ChatOptions.builder().maxTokens(6).build()))
            .call()
            .chatResponse();
        assertTokensAndPolicy(portablePrompt, 6, "plain");

        ChatResponse perCall = client.prompt()
            .user(QUESTION)
            .options(SpeculaChatOptions.builder().maxTokens(3).speculation(false))
            .call()
            .chatResponse();
        assertTokensAndPolicy(perCall, 3, "plain");

        ChatResponse promptAndPerCall = client
            .prompt(new Prompt(QUESTION, SpeculaChatOptions.builder().maxTokens(5).build()))
            .options(SpeculaChatOptions.builder().maxTokens(4))
            .call()
            .chatResponse();
        assertThat(promptAndPerCall.getMetadata().getUsage().getCompletionTokens()).isEqualTo(4);

        // defaults given as Spring AI's portable options, Specula options in the Prompt
        ChatClient portableDefaults = ChatClient.builder(chatModel)
            .defaultOptions(ChatOptions.builder().maxTokens(20))
            .build();
        ChatResponse speculaPrompt = portableDefaults
            .prompt(new Prompt(QUESTION, SpeculaChatOptions.builder().maxTokens(5).build()))
            .call()
            .chatResponse();
        assertThat(speculaPrompt.getMetadata().getUsage().getCompletionTokens()).isEqualTo(5);
    }

    private static void assertTokensAndPolicy(ChatResponse response, int tokens, String policy) {
        assertThat(response.getMetadata().getUsage().getCompletionTokens()).as("completion tokens").isEqualTo(tokens);
        assertThat((String) response.getMetadata().get(SpeculaChatModel.METADATA_POLICY)).isEqualTo(policy);
    }

    @Test
    void metadataSaysWhichPolicyWasAskedForWhichRanAndWhy() {
        // the response cache and the goodput switch on: the third speculative-eligible
        // request is a plain probe
        GenerationService cachedService = GenerationService.builder(models)
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .build();
        CircuitBreaker open = CircuitBreaker.ofDefaults("open-for-test");
        open.transitionToForcedOpenState();
        GenerationService brokenService = GenerationService.builder(models)
            .responseCache(ResponseCacheSettings.disabled())
            .goodput(GoodputSettings.disabled())
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .draftBreaker(open)
            .build();
        try {
            SpeculaChatModel cached = model(cachedService);
            ChatResponse normal = cached.call(new Prompt(QUESTION, ChatOptions.builder().maxTokens(6).build()));
            cached.call(new Prompt(QUESTION, ChatOptions.builder().maxTokens(7).build()));
            ChatResponse probe = cached.call(new Prompt(QUESTION, ChatOptions.builder().maxTokens(8).build()));
            ChatResponse hit = cached.call(new Prompt(QUESTION, ChatOptions.builder().maxTokens(6).build()));
            ChatResponse breakerOpen = model(brokenService)
                .call(new Prompt(QUESTION, SpeculaChatOptions.builder().maxTokens(6).policy("fixed:2").build()));
            ChatResponse plain = chatModel
                .call(new Prompt(QUESTION, SpeculaChatOptions.builder().maxTokens(6).speculation(false).build()));

            assertPolicies(normal, "fixed", "fixed", null);
            assertPolicies(probe, "fixed", "plain", "probe");
            assertPolicies(hit, "fixed", "cache", "cache");
            assertThat((Boolean) hit.getMetadata().get(SpeculaChatModel.METADATA_CACHED)).isTrue();
            assertThat((Long) hit.getMetadata().get(SpeculaChatModel.METADATA_DRAFTED)).isZero();
            assertThat((Long) hit.getMetadata().get(SpeculaChatModel.METADATA_TARGET_CALLS)).isZero();
            assertThat(hit.getMetadata().getUsage().getCompletionTokens()).isEqualTo(6);
            assertPolicies(breakerOpen, "fixed", "plain", "breaker-open");
            assertPolicies(plain, "plain", "plain", null);
        }
        finally {
            cachedService.close();
            brokenService.close();
        }
    }

    private static SpeculaChatModel model(GenerationService service) {
        return SpeculaChatModel.builder()
            .service(service)
            .modelName("specula-tiny")
            .defaultOptions(SpeculaChatOptions.builder().temperature(0.0).maxTokens(48).build())
            .build();
    }

    private static void assertPolicies(ChatResponse response, String requested, String effective, String reason) {
        assertThat((String) response.getMetadata().get(SpeculaChatModel.METADATA_REQUESTED_POLICY))
            .as("requested policy")
            .isEqualTo(requested);
        assertThat((String) response.getMetadata().get(SpeculaChatModel.METADATA_POLICY)).as("effective policy")
            .isEqualTo(effective);
        assertThat((String) response.getMetadata().get(SpeculaChatModel.METADATA_POLICY_REASON)).as("reason")
            .isEqualTo(reason);
    }

    @Test
    void aRepeatedGreedyStreamArrivesInTheSameChunks() {
        GenerationService cachedService = GenerationService.builder(models)
            .goodput(GoodputSettings.disabled())
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .build();
        try {
            ChatClient client = ChatClient.create(model(cachedService));
            List<String> first = client.prompt().user(QUESTION).stream().content().collectList().block(TIMEOUT);
            List<String> second = client.prompt().user(QUESTION).stream().content().collectList().block(TIMEOUT);

            assertThat(cachedService.snapshot().cacheHits()).isEqualTo(1);
            assertThat(first).hasSizeGreaterThan(1);
            assertThat(second).isEqualTo(first);

            // cached by a call, streamed as an uncached stream is
            String other = "Write a class for a bank account.";
            client.prompt().user(other).call().content();
            List<String> afterCall = client.prompt().user(other).stream().content().collectList().block(TIMEOUT);
            List<String> uncached = ChatClient.create(chatModel)
                .prompt()
                .user(other)
                .stream()
                .content()
                .collectList()
                .block(TIMEOUT);
            assertThat(cachedService.snapshot().cacheHits()).isEqualTo(2);
            assertThat(afterCall).hasSizeGreaterThan(1).isEqualTo(uncached);
        }
        finally {
            cachedService.close();
        }
    }

    @Test
    void seededSamplingIsReproducible() {
        SpeculaChatOptions seeded = SpeculaChatOptions.builder().temperature(0.9).topP(0.95).seed(7L).build();
        String first = chatModel
            .call(new Prompt(List.of(new SystemMessage("Be brief."), new UserMessage(QUESTION)), seeded))
            .getResult()
            .getOutput()
            .getText();
        String second = chatModel
            .call(new Prompt(List.of(new SystemMessage("Be brief."), new UserMessage(QUESTION)), seeded))
            .getResult()
            .getOutput()
            .getText();
        assertThat(second).isEqualTo(first);
    }

    @Test
    void badOptionsNameTheOption() {
        assertRefused(ChatOptions.builder().model("gpt-4o").build(), "model").hasMessageContaining("gpt-4o")
            .hasMessageContaining("specula-tiny");
        assertRefused(ChatOptions.builder().frequencyPenalty(2.5).build(), "frequencyPenalty")
            .hasMessageContaining("frequency_penalty")
            .hasMessageContaining("[-2, 2]");
        assertRefused(ChatOptions.builder().presencePenalty(-3.0).build(), "presencePenalty")
            .hasMessageContaining("presence_penalty");
        assertRefused(SpeculaChatOptions.builder().repetitionPenalty(0.0).build(), "repetitionPenalty");
        assertRefused(SpeculaChatOptions.builder().logitBias(java.util.Map.of(1, 200.0)).build(), "logitBias")
            .hasMessageContaining("200");
        assertRefused(SpeculaChatOptions.builder().topLogprobs(3).build(), "topLogprobs")
            .hasMessageContaining("logprobs");
        assertRefused(SpeculaChatOptions.builder().logprobs(true).topLogprobs(21).build(), "topLogprobs")
            .hasMessageContaining("21");
        assertRefused(ChatOptions.builder().temperature(-1.0).build(), "temperature")
            .hasMessageContaining("temperature");
        assertRefused(ChatOptions.builder().topP(1.5).build(), "topP").hasMessageContaining("1.5");
        assertRefused(ChatOptions.builder().maxTokens(0).build(), "maxTokens").hasMessageContaining("maxTokens")
            .hasMessageContaining("promptLogprobs");
        assertRefused(SpeculaChatOptions.builder().promptLogprobs(21).build(), "promptLogprobs")
            .hasMessageContaining("21");
        assertRefused(SpeculaChatOptions.builder().promptLogprobs(-1).build(), "promptLogprobs")
            .hasMessageContaining("[0, 20]");
        assertRefused(ChatOptions.builder().stopSequences(List.of("\n", "")).build(), "stopSequences");
        assertRefused(SpeculaChatOptions.builder().policy("warp-drive").build(), "policy")
            .hasMessageContaining("warp-drive");
        assertRefused(SpeculaChatOptions.builder().gamma(1000).build(), "gamma").hasMessageContaining("1000");
        assertRefused(SpeculaChatOptions.builder().policy("fixed:1000").build(), "policy").hasMessageContaining("1000");
    }

    /**
     * The models of this service never load: whatever needs them (the tokenizer) fails
     * with ModelsNotReadyException.
     */
    @Test
    void aPromptOverTheCharacterLimitIsRefusedBeforeTokenizing() {
        GenerationService loading = GenerationService.builder(ModelPairHandle.loading(() -> {
            throw new AssertionError("never runs");
        }, (task) -> {
        })).build();
        try {
            SpeculaChatModel byDefault = SpeculaChatModel.builder().service(loading).modelName("m").build();
            Prompt huge = new Prompt(new UserMessage("x".repeat(SpeculaChatModel.DEFAULT_MAX_PROMPT_CHARACTERS + 1)));
            assertThatThrownBy(() -> byDefault.call(huge))
                .isInstanceOfSatisfying(InvalidRequestException.class,
                        (ex) -> assertThat(ex.getField()).isEqualTo("messages"))
                .hasMessageContaining("1000000");

            SpeculaChatModel limited = SpeculaChatModel.builder()
                .service(loading)
                .modelName("m")
                .maxPromptCharacters(100)
                .build();
            Prompt tooLong = new Prompt(List.of(new SystemMessage("s".repeat(60)), new UserMessage("u".repeat(41))));
            assertThatThrownBy(() -> limited.call(tooLong))
                .isInstanceOfSatisfying(InvalidRequestException.class,
                        (ex) -> assertThat(ex.getField()).isEqualTo("messages"))
                .hasMessageContaining("101 characters")
                .hasMessageContaining("100");
            assertThatThrownBy(() -> limited.stream(tooLong).blockLast(Duration.ofSeconds(10)))
                .isInstanceOf(InvalidRequestException.class);
            // at the limit the prompt goes on to the models (still loading)
            assertThatThrownBy(() -> limited.call(new Prompt(new UserMessage("u".repeat(100)))))
                .isInstanceOf(ModelsNotReadyException.class);
        }
        finally {
            loading.close();
        }
    }

    private static org.assertj.core.api.AbstractThrowableAssert<?, ?> assertRefused(ChatOptions options, String field) {
        return assertThatThrownBy(() -> chatModel.call(new Prompt(QUESTION, options)))
            .isInstanceOfSatisfying(InvalidRequestException.class, (ex) -> assertThat(ex.getField()).isEqualTo(field));
    }

}
