package dev.specula.cli;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

import org.jspecify.annotations.Nullable;

import dev.specula.proposer.PromptLookup;
import dev.specula.proposer.ProposerKind;

/**
 * What proposes the drafts:
 * {@code --proposer model|ngram|model+ngram|suffix|model+suffix|griffin} (bench:
 * {@code --proposers a,b,...}), and prompt lookup's n-gram lengths {@code --ngram-min N}
 * {@code --ngram-max N} (1 and 4 by default).
 */
final class ProposerOptions {

    static final Set<String> OPTIONS = Set.of("proposer", "ngram-min", "ngram-max");

    private ProposerOptions() {
    }

    /**
     * {@code --proposer}; null: the default ({@code model} with a draft, else
     * {@code ngram}).
     */
    static @Nullable ProposerKind kind(Arguments arguments) {
        return arguments.has("proposer") ? ProposerKind.parse(arguments.string("proposer", null), "--proposer") : null;
    }

    /**
     * {@code --proposers a,b} for bench (each runs with each policy); without it the one
     * {@code --proposer} (null: the default).
     */
    static List<@Nullable ProposerKind> kinds(Arguments arguments) {
        List<@Nullable ProposerKind> kinds = new ArrayList<>();
        if (!arguments.has("proposers")) {
            kinds.add(kind(arguments));
            return kinds;
        }
        for (String name : new LinkedHashSet<>(List.of(arguments.string("proposers", "").split(",")))) {
            if (!name.isBlank()) {
                kinds.add(ProposerKind.parse(name, "--proposers"));
            }
        }
        if (kinds.isEmpty()) {
            throw new CliException("--proposers must name at least one of " + ProposerKind.NAMES);
        }
        return kinds;
    }

    static PromptLookup lookup(Arguments arguments) {
        int min = arguments.integer("ngram-min", PromptLookup.DEFAULT.minNgram(), 1, 64);
        int max = arguments.integer("ngram-max", Math.max(min, PromptLookup.DEFAULT.maxNgram()), 1, 64);
        if (max < min) {
            throw new CliException("--ngram-max (" + max + ") must be >= --ngram-min (" + min + ")");
        }
        return new PromptLookup(min, max);
    }

}
