package dev.specula.grammar;

import java.nio.charset.StandardCharsets;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Token bytes from tokenizer.json: byte-level BPE, SentencePiece with byte fallback,
 * added tokens, holes.
 */
class TokenVocabularyTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static String text(TokenVocabulary vocabulary, int id) {
        return new String(vocabulary.bytes(id), StandardCharsets.UTF_8);
    }

    @Test
    void byteLevelTokensAreTheirBytes() {
        TokenVocabulary qwen = Vocabularies.fixture("qwen-vocab");
        assertThat(qwen.size()).isEqualTo(512);
        // Ġthat (507): a space and "that"; special added tokens
        assertThat(text(qwen, 507)).isEqualTo(" that");
        assertThat(text(qwen, 0)).isEqualTo("<|endoftext|>");
        assertThat(qwen.isSpecial(0)).isTrue();
        assertThat(qwen.isSpecial(507)).isFalse();
        assertThat(Vocabularies.fixture("tiny").size()).isEqualTo(4096);
        assertThat(Vocabularies.fixture("llama").size()).isEqualTo(512);
        assertThat(Vocabularies.fixture("mistral").isSpecial(3)).isTrue();
        assertThat(text(Vocabularies.fixture("llama3"), 4)).isEqualTo("<|eot_id|>");
    }

    @Test
    void sentencePieceTokensTurnMetaspaceIntoSpaceAndByteFallbackIntoBytes() {
        TokenVocabulary stories = Vocabularies.fixture("stories260K");
        // <0x0A> (13) is the byte 0x0A; <0xE6> a lone UTF-8 lead byte
        assertThat(stories.bytes(13)).containsExactly(0x0A);
        assertThat(stories.bytes(3 + 0xE6)).containsExactly((byte) 0xE6);
        int withSpace = -1;
        for (int id = 0; id < stories.size(); id++) {
            byte[] bytes = stories.bytes(id);
            if (bytes != null && bytes.length > 1 && bytes[0] == ' ') {
                withSpace = id;
            }
        }
        assertThat(withSpace).as("a ▁-prefixed piece decodes to a space").isPositive();
    }

    @Test
    void holesStandForNothingAndAddedTokensTakeTheirContent() throws Exception {
        JsonNode root = JSON.readTree("""
                {"model":{"type":"BPE","vocab":{"a":0,"b":1,"\u0120c":4},"merges":[]},
                 "decoder":{"type":"ByteLevel"},
                 "added_tokens":[{"id":5,"content":"<tool>","special":false},
                                 {"id":6,"content":"<eos>","special":true}]}
                """);
        TokenVocabulary vocabulary = TokenVocabulary.of(root);
        assertThat(vocabulary.size()).isEqualTo(7);
        assertThat(vocabulary.bytes(2)).isNull();
        assertThat(vocabulary.bytes(3)).isNull();
        assertThat(text(vocabulary, 4)).isEqualTo(" c");
        assertThat(text(vocabulary, 5)).isEqualTo("<tool>");
        assertThat(vocabulary.isSpecial(5)).isFalse();
        assertThat(vocabulary.isSpecial(6)).isTrue();
        // a non-special added token matches its text like any token
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.literal("<tool>"), vocabulary, new int[] { 6 });
        GrammarMatcher matcher = grammar.newMatcher();
        assertThat(matcher.isAllowed(5)).isTrue();
        assertThat(matcher.isAllowed(2)).isFalse();
        matcher.advance(5);
        assertThat(matcher.isTerminated()).isTrue();
    }

    @Test
    void unigramPiecesAreReadFromTheirArray() throws Exception {
        JsonNode root = JSON.readTree("""
                {"model":{"type":"Unigram","byte_fallback":true,
                          "vocab":[["<unk>",0],["▁{",-1],["<0x0A>",0],["▁the",-2],["<0xZZ>",0]]},
                 "decoder":{"type":"Sequence","decoders":[
                   {"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"}]},
                 "added_tokens":[{"id":0,"content":"<unk>","special":true}]}
                """);
        TokenVocabulary vocabulary = TokenVocabulary.of(root);
        assertThat(vocabulary.size()).isEqualTo(5);
        assertThat(text(vocabulary, 1)).isEqualTo(" {");
        assertThat(vocabulary.bytes(2)).containsExactly(0x0A);
        assertThat(text(vocabulary, 3)).isEqualTo(" the");
        assertThat(text(vocabulary, 4)).as("not a byte: its text").isEqualTo("<0xZZ>");
    }

    @Test
    void otherTokenizerModelsAreRefused() throws Exception {
        JsonNode root = JSON.readTree("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}}");
        assertThatThrownBy(() -> TokenVocabulary.of(root)).isInstanceOf(IllegalArgumentException.class)
            .hasMessageContaining("WordPiece");
    }

    @Test
    void theSyntheticVocabularyHas150kTokens() {
        TokenVocabulary synthetic = Vocabularies.synthetic(150_000);
        assertThat(synthetic.size()).isEqualTo(150_000);
        assertThat(synthetic.trie().nodeCount()).isGreaterThan(150_000);
    }

}
