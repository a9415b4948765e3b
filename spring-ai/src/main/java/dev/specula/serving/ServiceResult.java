package dev.specula.serving;

import java.util.Optional;

import dev.specula.engine.FallbackReason;
import dev.specula.engine.GenerationResult;

/**
 * What a {@link GenerationService} answered.
 *
 * @param generation the output, its tokens and statistics (of every attempt, when a
 * fallback took over)
 * @param cached whether it was replayed from the response cache (nothing was decoded)
 * @param fallback why plain decoding served (part of) a request that asked for
 * speculation; empty if it did not
 */
public record ServiceResult(GenerationResult generation, boolean cached, Optional<FallbackReason> fallback) {

    public boolean fellBack() {
        return fallback.isPresent();
    }
}
