package dev.specula.chat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.model.ChatResponse;

import dev.specula.Fixtures;
import dev.specula.serving.BatchingSettings;
import dev.specula.serving.GenerationService;
import dev.specula.serving.GoodputSettings;
import dev.specula.serving.ModelPairHandle;
import dev.specula.serving.ResponseCacheSettings;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Penalties, a logit bias and log-probabilities through ChatClient on the embedded pair:
 * honoured under speculation, not refused.
 */
class SpeculaChatLogitsTest {

    private static final String QUESTION = "Write a function that returns the largest of three numbers.";

    private static ModelPairHandle models;

    private static GenerationService service;

    private static SpeculaChatModel chatModel;

    @BeforeAll
    static void start() {
        models = ModelPairHandle.ready(Fixtures.embeddedModels());
        service = GenerationService.builder(models)
            .responseCache(ResponseCacheSettings.disabled())
            .goodput(GoodputSettings.disabled())
            .batching(BatchingSettings.disabled())
            .prefixCacheBytes(0)
            .build();
        chatModel = SpeculaChatModel.builder()
            .service(service)
            .modelName("specula-tiny")
            .defaultOptions(SpeculaChatOptions.builder().temperature(0.0).maxTokens(40).build())
            .build();
    }

    @AfterAll
    static void stop() {
        service.close();
        models.close();
    }

    @Test
    void penaltiesChangeTheAnswerAndSpeculationStillRuns() {
        ChatResponse plain = ask(SpeculaChatOptions.builder().policy("fixed:4").build());
        ChatResponse penalized = ask(
                SpeculaChatOptions.builder().policy("fixed:4").frequencyPenalty(1.5).repetitionPenalty(1.3).build());
        ChatResponse penalizedPlainly = ask(
                SpeculaChatOptions.builder().speculation(false).frequencyPenalty(1.5).repetitionPenalty(1.3).build());

        assertThat(penalized.getResult().getOutput().getText()).isNotEqualTo(plain.getResult().getOutput().getText())
            .isEqualTo(penalizedPlainly.getResult().getOutput().getText());
        assertThat((Long) penalized.getMetadata().get(SpeculaChatModel.METADATA_DRAFTED)).isPositive();
    }

    @Test
    void aBiasOfMinus100ForbidsAToken() {
        ChatResponse plain = ask(SpeculaChatOptions.builder().logprobs(true).build());
        List<ChatLogprob> tokens = plain.getResult().getMetadata().get(ChatLogprob.METADATA_KEY);
        int firstToken = tokens.get(0).id();

        ChatResponse biased = ask(
                SpeculaChatOptions.builder().logprobs(true).logitBias(Map.of(firstToken, -100.0)).build());
        List<ChatLogprob> biasedTokens = biased.getResult().getMetadata().get(ChatLogprob.METADATA_KEY);

        assertThat(biasedTokens).extracting(ChatLogprob::id).doesNotContain(firstToken);
    }

    @Test
    void logprobsArriveInTheMetadataOfCallAndStream() {
        SpeculaChatOptions options = SpeculaChatOptions.builder()
            .logprobs(true)
            .topLogprobs(3)
            .policy("fixed:4")
            .build();
        ChatResponse called = ask(options);
        List<ChatLogprob> logprobs = called.getResult().getMetadata().get(ChatLogprob.METADATA_KEY);

        assertThat(logprobs).hasSize(called.getMetadata().getUsage().getCompletionTokens());
        assertThat(String.join("", logprobs.stream().map(ChatLogprob::token).toList()))
            .startsWith(called.getResult().getOutput().getText().substring(0, 10));
        for (ChatLogprob logprob : logprobs) {
            assertThat(logprob.logprob()).isLessThanOrEqualTo(0.0);
            assertThat(logprob.topLogprobs()).hasSize(3);
            // greedy: the chosen token is the most likely one
            assertThat(logprob.topLogprobs().get(0).id()).isEqualTo(logprob.id());
            assertThat(logprob.bytes()).isNotEmpty();
        }
        List<ChatResponse> streamed = ChatClient.create(chatModel)
            .prompt()
            .user(QUESTION)
            .options(options.mutate())
            .stream()
            .chatResponse()
            .collectList()
            .block();
        // each chunk carries the tokens whose text it brings first; the last, what is
        // left (the end of sequence)
        List<ChatLogprob> streamedLogprobs = new ArrayList<>();
        for (ChatResponse chunk : streamed) {
            List<ChatLogprob> own = chunk.getResult().getMetadata().get(ChatLogprob.METADATA_KEY);
            if (own != null) {
                streamedLogprobs.addAll(own);
                assertThat(own).isNotEmpty();
            }
            else {
                assertThat(chunk.getResult().getOutput().getText()).as("a chunk with text has its tokens").isEmpty();
            }
        }
        // how many chunks there are depends on timing (text waiting for a slow reader is
        // joined into one), so only what each chunk carries is checked
        assertThat(streamedLogprobs).isEqualTo(logprobs);
    }

    @Test
    void promptLogprobsComeWithTheAnswerAndWithTheFirstStreamedChunk() {
        int[] ids = models.get().target().tokenizer().encode("def largest(a, b, c):\n    ", true);
        SpeculaChatOptions options = SpeculaChatOptions.builder().promptLogprobs(2).maxTokens(8).build();
        ChatResponse called = chatModel.callTokens(ids, options);
        List<ChatLogprob> scored = called.getResult().getMetadata().get(ChatLogprob.PROMPT_METADATA_KEY);
        assertThat(scored).extracting(ChatLogprob::id)
            .containsExactlyElementsOf(Arrays.stream(ids).skip(1).boxed().toList());
        assertThat(scored).allSatisfy((logprob) -> {
            assertThat(logprob.logprob()).isLessThanOrEqualTo(0.0);
            assertThat(logprob.topLogprobs()).hasSize(2);
        });
        assertThat(called.getResult().getMetadata().<Object>get(ChatLogprob.METADATA_KEY)).as("not asked for").isNull();

        List<ChatResponse> streamed = chatModel.streamTokens(ids, options).collectList().block();
        assertThat(streamed.get(0).getResult().getMetadata().<Object>get(ChatLogprob.PROMPT_METADATA_KEY))
            .isEqualTo(scored);
        assertThat(streamed.subList(1, streamed.size())).allSatisfy(
                (chunk) -> assertThat(chunk.getResult().getMetadata().<Object>get(ChatLogprob.PROMPT_METADATA_KEY))
                    .isNull());

        // a chat prompt is scored as the template renders it
        ChatResponse chat = ChatClient.create(chatModel)
            .prompt()
            .user(QUESTION)
            .options(SpeculaChatOptions.builder().promptLogprobs(0).maxTokens(4))
            .call()
            .chatResponse();
        List<ChatLogprob> chatScored = chat.getResult().getMetadata().get(ChatLogprob.PROMPT_METADATA_KEY);
        assertThat(chatScored).hasSize(chat.getMetadata().getUsage().getPromptTokens() - 1);
    }

    @Test
    void maxTokensZeroScoresThePromptAndGeneratesNothing() {
        int[] ids = models.get().target().tokenizer().encode("def largest(a, b, c):\n    ", true);
        SpeculaChatOptions options = SpeculaChatOptions.builder().promptLogprobs(1).maxTokens(0).build();
        ChatResponse called = chatModel.callTokens(ids, options);
        assertThat(called.getResult().getOutput().getText()).isEmpty();
        assertThat(called.getResult().getMetadata().getFinishReason()).isEqualTo("length");
        assertThat(called.getMetadata().getUsage().getCompletionTokens()).isZero();
        assertThat(called.getMetadata().getUsage().getPromptTokens()).isEqualTo(ids.length);
        assertThat(called.getResult().getMetadata().<List<ChatLogprob>>get(ChatLogprob.PROMPT_METADATA_KEY))
            .hasSize(ids.length - 1);

        List<ChatResponse> streamed = chatModel.streamTokens(ids, options).collectList().block();
        assertThat(streamed).hasSize(1);
        assertThat(streamed.get(0).getResult().getMetadata().getFinishReason()).isEqualTo("length");
        assertThat(streamed.get(0).getResult().getMetadata().<Object>get(ChatLogprob.PROMPT_METADATA_KEY))
            .isEqualTo(called.getResult().getMetadata().get(ChatLogprob.PROMPT_METADATA_KEY));
    }

    private static ChatResponse ask(SpeculaChatOptions options) {
        return ChatClient.create(chatModel).prompt().user(QUESTION).options(options.mutate()).call().chatResponse();
    }

}
