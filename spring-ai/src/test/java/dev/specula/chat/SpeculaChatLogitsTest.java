package dev.specula.chat;

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
        List<ChatLogprob> streamedLogprobs = streamed.get(streamed.size() - 1)
            .getResult()
            .getMetadata()
            .get(ChatLogprob.METADATA_KEY);
        assertThat(streamedLogprobs).isEqualTo(logprobs);
    }

    private static ChatResponse ask(SpeculaChatOptions options) {
        return ChatClient.create(chatModel).prompt().user(QUESTION).options(options.mutate()).call().chatResponse();
    }

}
