package dev.specula.sample;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import dev.specula.chat.ChatLogprob;

import static org.assertj.core.api.Assertions.assertThat;

/** The legacy {@code logprobs} object built from the model's per-token figures. */
class CompletionLogprobsTest {

    @Test
    void listsTokensTheirLogprobsTheTopOnesWithTheSampledOneAndTheirOffsets() {
        // offsets count characters (code points): the snake is one, of two UTF-16 units
        ChatLogprob first = entry("def", 11, -0.1,
                List.of(entry("def", 11, -0.1, List.of()), entry("class", 12, -2.5, List.of())));
        ChatLogprob second = entry(" \uD83D\uDC0Dx", 13, -3.0, List.of(entry(" x", 14, -0.5, List.of())));
        ChatLogprob third = entry("(", 15, -0.2, List.of());

        Map<String, Object> logprobs = CompletionLogprobs.of(List.of(first, second, third));

        assertThat(logprobs).containsOnlyKeys("tokens", "token_logprobs", "top_logprobs", "text_offset");
        assertThat(logprobs.get("tokens")).isEqualTo(List.of("def", " \uD83D\uDC0Dx", "("));
        assertThat(logprobs.get("token_logprobs")).isEqualTo(List.of(-0.1, -3.0, -0.2));
        // the top ones in order, and the sampled token when it is not among them
        assertThat(logprobs.get("top_logprobs")).isEqualTo(List.of(Map.of("def", -0.1, "class", -2.5),
                Map.of(" x", -0.5, " \uD83D\uDC0Dx", -3.0), Map.of("(", -0.2)));
        assertThat(logprobs.get("text_offset")).isEqualTo(List.of(0, 3, 6));
    }

    @Test
    void anEchoedPromptLeadsWithItsFirstTokenWhichHasNoLogprob() {
        ChatLogprob second = entry("(", 15, -1.5, List.of(entry("(", 15, -1.5, List.of())));
        Map<String, Object> logprobs = new CompletionLogprobs(0).first("<s>")
            .add(List.of(second))
            .add(List.of(entry("x", 16, -0.3, List.of())))
            .toMap();

        assertThat(logprobs.get("tokens")).isEqualTo(List.of("<s>", "(", "x"));
        assertThat(logprobs.get("token_logprobs")).isEqualTo(Arrays.asList(null, -1.5, -0.3));
        assertThat(logprobs.get("top_logprobs")).isEqualTo(Arrays.asList(null, Map.of("(", -1.5), Map.of("x", -0.3)));
        assertThat(logprobs.get("text_offset")).isEqualTo(List.of(0, 3, 4));
    }

    @Test
    void aStreamsChunksGoOnWithTheOffsetsOfTheTokensBefore() {
        CompletionLogprobs first = new CompletionLogprobs(0).add(List.of(entry("def", 11, -0.1, List.of())));
        CompletionLogprobs second = new CompletionLogprobs(first.end())
            .add(List.of(entry(" f", 12, -0.2, List.of()), entry("(", 13, -0.3, List.of())));

        assertThat(first.end()).isEqualTo(3);
        assertThat(second.toMap().get("text_offset")).isEqualTo(List.of(3, 5));
        assertThat(second.end()).isEqualTo(6);
    }

    private static ChatLogprob entry(String token, int id, double logprob, List<ChatLogprob> top) {
        return new ChatLogprob(token, id, logprob, List.of(), top);
    }

}
