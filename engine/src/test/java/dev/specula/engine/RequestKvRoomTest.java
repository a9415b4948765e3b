package dev.specula.engine;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.ForwardingDecoder;
import dev.specula.kv.KvSequence;
import dev.specula.model.Decoder;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.FixedPolicy;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A request decoded alone asks its target's and its draft's caches for room for what the
 * KV budget counts, its prompt and new tokens ({@link Decoder#newCache(int)}): a cache
 * written in place then never holds more than was reserved for it.
 */
class RequestKvRoomTest {

    private static DecoderModel target;

    private static DecoderModel draft;

    @BeforeAll
    static void load() throws Exception {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.target(), RuntimeOptions.defaults());
        draft = DecoderModel.load(pair.draft(), RuntimeOptions.defaults());
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
    }

    @Test
    void bothCachesOfARequestAreSizedToItsPromptAndNewTokens() {
        RoomRecorder targetSteps = new RoomRecorder(target);
        RoomRecorder drafts = new RoomRecorder(draft);
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, targetSteps, drafts), null);
        int[] prompt = target.tokenizer().encode("def fibonacci(n):\n    ", false);
        GenerationResult result = decoder.generate(GenerationRequest.builder(prompt)
            .maxNewTokens(20)
            .ignoreEos(true)
            .policy(() -> new FixedPolicy(3))
            .build());
        assertThat(result.tokenIds()).hasSize(20);
        assertThat(targetSteps.asked).containsExactly(prompt.length + 20);
        assertThat(drafts.asked).containsExactly(prompt.length + 20);
    }

    /** A model that records the room each new cache is asked for. */
    private static final class RoomRecorder extends ForwardingDecoder {

        private final List<Integer> asked = new CopyOnWriteArrayList<>();

        RoomRecorder(Decoder real) {
            super(real);
        }

        @Override
        public KvSequence newCache(int maxTokens) {
            asked.add(maxTokens);
            return super.newCache(maxTokens);
        }

    }

}
