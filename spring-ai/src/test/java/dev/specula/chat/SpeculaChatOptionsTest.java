package dev.specula.chat;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.chat.prompt.DefaultChatOptionsBuilder;

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

        SpeculaChatOptions.Builder combined = defaults
            .combineWith(SpeculaChatOptions.builder().maxTokens(5).seed(7L).speculation(false).proposer("ngram"));

        assertThat(combined).as("combineWith returns this builder").isSameAs(defaults);
        SpeculaChatOptions options = defaults.build();
        assertThat(options.getMaxTokens()).isEqualTo(5);
        assertThat(options.getSeed()).isEqualTo(7L);
        assertThat(options.getSpeculation()).isFalse();
        assertThat(options.getTemperature()).isEqualTo(0.0);
        assertThat(options.getPolicy()).isEqualTo("fixed");
        assertThat(options.getGamma()).isEqualTo(3);
        assertThat(options.getProposer()).isEqualTo("ngram");
        assertThat(options.mutate().build()).isEqualTo(options);
        assertThat(
                SpeculaChatOptions.merge(SpeculaChatOptions.builder().proposer("model").build(), options).getProposer())
            .isEqualTo("model");
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

}
