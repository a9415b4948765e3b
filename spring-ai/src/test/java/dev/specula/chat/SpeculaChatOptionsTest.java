package dev.specula.chat;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.DefaultChatOptionsBuilder;
import org.springframework.ai.model.tool.ToolCallingChatOptions;
import org.springframework.ai.tool.ToolCallback;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The options builder against Spring AI 2's contract: {@code combineWith} mutates this
 * builder (fields set in the other win), and Spring AI's own builders can merge ours.
 */
class SpeculaChatOptionsTest {

    @Test
    void combineWithMutatesThisBuilderAndTheOtherBuildersFieldsWin() {
        SpeculaChatOptions.Builder defaults = SpeculaChatOptions.builder()
            .maxTokens(20)
            .temperature(0.0)
            .policy("fixed")
            .gamma(3);

        SpeculaChatOptions.Builder combined = defaults.combineWith(SpeculaChatOptions.builder()
            .maxTokens(5)
            .seed(7L)
            .speculation(false)
            .proposer("ngram")
            .provenance(true));

        assertThat(combined).as("combineWith returns this builder").isSameAs(defaults);
        SpeculaChatOptions options = defaults.build();
        assertThat(options.getMaxTokens()).isEqualTo(5);
        assertThat(options.getSeed()).isEqualTo(7L);
        assertThat(options.getSpeculation()).isFalse();
        assertThat(options.getTemperature()).isEqualTo(0.0);
        assertThat(options.getPolicy()).isEqualTo("fixed");
        assertThat(options.getGamma()).isEqualTo(3);
        assertThat(options.getProposer()).isEqualTo("ngram");
        assertThat(options.getProvenance()).isTrue();
        assertThat(options.mutate().build()).isEqualTo(options);
        assertThat(
                SpeculaChatOptions.merge(SpeculaChatOptions.builder().proposer("model").build(), options).getProposer())
            .isEqualTo("model");
        assertThat(SpeculaChatOptions.merge(SpeculaChatOptions.builder().provenance(false).build(), options)
            .getProvenance()).isFalse();
        assertThat(options).isNotEqualTo(options.mutate().provenance(null).build());
    }

    @Test
    void itExtendsSpringAisBuilderSoPortableBuildersMergeIt() {
        assertThat(SpeculaChatOptions.builder()).isInstanceOf(DefaultChatOptionsBuilder.class);

        // ChatClient.builder(m).defaultOptions(ChatOptions.builder()...) merges a
        // Prompt's SpeculaChatOptions into Spring AI's own builder
        ChatOptions.Builder<?> portable = ChatOptions.builder().maxTokens(20).temperature(0.5);
        portable.combineWith(SpeculaChatOptions.builder().maxTokens(5).policy("fixed"));
        assertThat(portable.build().getMaxTokens()).isEqualTo(5);
        assertThat(portable.build().getTemperature()).isEqualTo(0.5);

        SpeculaChatOptions.Builder specula = SpeculaChatOptions.builder().maxTokens(20).policy("fixed");
        specula.combineWith(ChatOptions.builder().temperature(0.7).topK(40));
        SpeculaChatOptions merged = specula.build();
        assertThat(merged.getTemperature()).isEqualTo(0.7);
        assertThat(merged.getTopK()).isEqualTo(40);
        assertThat(merged.getMaxTokens()).isEqualTo(20);
        assertThat(merged.getPolicy()).isEqualTo("fixed");
    }

    @Test
    void aCloneIsIndependentOfItsBuilder() {
        SpeculaChatOptions.Builder original = SpeculaChatOptions.builder()
            .maxTokens(20)
            .policy("fixed")
            .stopSequences(List.of("\n\n"));
        SpeculaChatOptions.Builder copy = original.clone();
        copy.maxTokens(5).policy("plain");

        assertThat(original.build().getMaxTokens()).isEqualTo(20);
        assertThat(original.build().getPolicy()).isEqualTo("fixed");
        assertThat(copy.build().getMaxTokens()).isEqualTo(5);
        assertThat(copy.build().getStopSequences()).containsExactly("\n\n");
        assertThat(original.build().mutate().build()).isEqualTo(original.build());
    }

    @Test
    void toolOptionsAreCarriedMergedAndCompared() {
        ToolCallback weather = SpeculaChatModelToolsTest.weatherTool("currentWeather");
        ToolCallback forecast = SpeculaChatModelToolsTest.weatherTool("forecast");
        SpeculaChatOptions.Builder defaults = SpeculaChatOptions.builder()
            .toolCallbacks(weather)
            .toolContext("user", "ada")
            .toolChoice("auto");
        assertThat(defaults).isInstanceOf(ToolCallingChatOptions.Builder.class);

        // ChatClient's way: combineWith appends callbacks and merges contexts
        defaults.combineWith(SpeculaChatOptions.builder()
            .toolCallbacks(forecast)
            .toolContext("tenant", "t1")
            .toolChoice("forecast")
            .parallelToolCalls(false));
        SpeculaChatOptions combined = defaults.build();
        assertThat(combined.getToolCallbacks()).containsExactly(weather, forecast);
        assertThat(combined.getToolContext()).isEqualTo(Map.of("user", "ada", "tenant", "t1"));
        assertThat(combined.getToolChoice()).isEqualTo("forecast");
        assertThat(combined.getParallelToolCalls()).isFalse();
        assertThat(combined.mutate().build()).isEqualTo(combined).hasSameHashCodeAs(combined);
        assertThat(combined.mutate().toolChoice("none").build()).isNotEqualTo(combined);
        assertThat(combined.mutate().toolCallbacks(List.of()).build()).isNotEqualTo(combined);

        // Spring AI's own tool-calling builder merges into ours
        SpeculaChatOptions.Builder specula = SpeculaChatOptions.builder().maxTokens(5);
        specula.combineWith(ToolCallingChatOptions.builder().toolCallbacks(forecast).toolContext("k", "v"));
        assertThat(specula.build().getToolCallbacks()).containsExactly(forecast);
        assertThat(specula.build().getToolContext()).containsEntry("k", "v");

        // a prompt's callbacks replace the defaults', contexts merge key by key
        SpeculaChatOptions merged = SpeculaChatOptions.merge(
                ToolCallingChatOptions.builder().toolCallbacks(forecast).toolContext("user", "bob").build(),
                SpeculaChatOptions.builder().toolCallbacks(weather).toolContext(Map.of("user", "ada", "x", 1)).build());
        assertThat(merged.getToolCallbacks()).containsExactly(forecast);
        assertThat(merged.getToolContext()).isEqualTo(Map.of("user", "bob", "x", 1));
        SpeculaChatOptions kept = SpeculaChatOptions.merge(ChatOptions.builder().maxTokens(3).build(), combined);
        assertThat(kept.getToolCallbacks()).containsExactly(weather, forecast);
        assertThat(kept.getToolChoice()).isEqualTo("forecast");
        assertThat(SpeculaChatOptions
            .merge(SpeculaChatOptions.builder().toolChoice("none").parallelToolCalls(true).build(), combined))
            .satisfies((options) -> {
                assertThat(options.getToolChoice()).isEqualTo("none");
                assertThat(options.getParallelToolCalls()).isTrue();
            });

        // a clone does not share its lists
        SpeculaChatOptions.Builder original = SpeculaChatOptions.builder().toolCallbacks(weather);
        original.clone()
            .toolContext("only", "in the copy")
            .combineWith(SpeculaChatOptions.builder().toolCallbacks(forecast));
        assertThat(original.build().getToolCallbacks()).containsExactly(weather);
        assertThat(original.build().getToolContext()).isNull();
    }

}
