package dev.specula.serving;

import java.util.Map;

import org.jspecify.annotations.Nullable;

import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PolicyParameters;
import dev.specula.proposer.PromptLookup;
import dev.specula.proposer.ProposerKind;
import dev.specula.proposer.TreeShape;

/**
 * The speculation policy of requests that name none: its name, the draft length γ and its
 * options.
 *
 * @param name a policy name (no {@code :γ}; γ is {@link #gamma}), default
 * {@value #DEFAULT_NAME}
 * @param gamma draft length γ, default {@link PolicyParameters#DEFAULT_GAMMA}
 * @param options policy options by name, default none
 * @param proposer what proposes the drafts of requests that name no proposer; null: the
 * engine's default ({@code model} with a draft, {@code griffin} with a feature head
 * alone, {@code ngram} without either)
 * @param promptLookup the n-gram lengths prompt lookup searches for, default
 * {@link PromptLookup#DEFAULT}
 * @param tree the shape of the proposals of the draft model or the feature head, a tree
 * verified in one call; null: chains. Requests whose proposer uses neither draft chains
 */
public record PolicySettings(String name, int gamma, Map<String, String> options, @Nullable ProposerKind proposer,
        PromptLookup promptLookup, @Nullable TreeShape tree) {

    /** The default policy's name. */
    public static final String DEFAULT_NAME = FixedPolicy.NAME;

    public PolicySettings {
        if (name == null || name.isBlank() || name.indexOf(':') >= 0) {
            throw new IllegalArgumentException(
                    "Policy name must be a policy's name (set γ with gamma) but was " + name);
        }
        if (gamma < 1 || gamma > FixedPolicy.MAX_GAMMA) {
            throw new IllegalArgumentException("gamma must be in [1, " + FixedPolicy.MAX_GAMMA + "] but was " + gamma);
        }
        options = Map.copyOf(options);
        if (promptLookup == null) {
            throw new IllegalArgumentException("promptLookup must not be null");
        }
    }

    public static PolicySettings defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** γ and options as the policies take them (no model directory, no resources yet). */
    public PolicyParameters parameters() {
        return new PolicyParameters(gamma, options);
    }

    /**
     * Builds {@link PolicySettings}; every setter has the default of the record's
     * component.
     */
    public static final class Builder {

        private String name = DEFAULT_NAME;

        private int gamma = PolicyParameters.DEFAULT_GAMMA;

        private Map<String, String> options = Map.of();

        private @Nullable ProposerKind proposer;

        private PromptLookup promptLookup = PromptLookup.DEFAULT;

        private @Nullable TreeShape tree;

        private Builder() {
        }

        public Builder name(String name) {
            this.name = name;
            return this;
        }

        public Builder gamma(int gamma) {
            this.gamma = gamma;
            return this;
        }

        public Builder options(Map<String, String> options) {
            this.options = options;
            return this;
        }

        public Builder proposer(@Nullable ProposerKind proposer) {
            this.proposer = proposer;
            return this;
        }

        public Builder promptLookup(PromptLookup promptLookup) {
            this.promptLookup = promptLookup;
            return this;
        }

        /**
         * Draft trees of this shape with the draft model or the feature head (null:
         * chains).
         */
        public Builder tree(@Nullable TreeShape tree) {
            this.tree = tree;
            return this;
        }

        public PolicySettings build() {
            return new PolicySettings(name, gamma, options, proposer, promptLookup, tree);
        }

    }
}
