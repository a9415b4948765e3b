package dev.specula.autoconfigure;

import java.util.LinkedHashMap;
import java.util.Map;

import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.context.properties.ConfigurationProperties;

import dev.specula.policy.FixedPolicy;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.UnknownPolicyException;
import dev.specula.proposer.PromptLookup;
import dev.specula.proposer.ProposerKind;
import dev.specula.proposer.TreeShape;
import dev.specula.request.InvalidRequestException;
import dev.specula.serving.PolicySettings;

/**
 * The default speculation policy (requests may choose another): its name, the draft
 * length γ and its options. Defaults are {@link PolicySettings#defaults()}'s. An unknown
 * name stops startup with an {@link UnknownPolicyException} listing the known ones; a bad
 * option or γ names its property once the policy is created (with the models).
 */
@ConfigurationProperties(SpeculaPolicyProperties.CONFIG_PREFIX)
public class SpeculaPolicyProperties implements InitializingBean {

    public static final String CONFIG_PREFIX = "specula.policy";

    /** Policy name, e.g. "fixed", "goodput"; "plain" turns speculation off. */
    private String name = "fixed";

    /**
     * Draft length gamma, 1 to 64: tokens drafted per round (the starting or maximum
     * length for adaptive policies).
     */
    private int gamma = 4;

    /** Policy options by name (e.g. threshold: 0.4), checked by the policy at startup. */
    private Map<String, String> options = new LinkedHashMap<>();

    /**
     * What proposes the drafts of requests that name none: "model" (the draft model),
     * "ngram" (prompt lookup: what followed the last tokens' latest earlier occurrence,
     * needs no draft), "model+ngram" (the lookup when it matches, the model otherwise),
     * "suffix" (suffix lookup: the most frequent continuation of the longest earlier
     * match, of any length, needs no draft), "model+suffix" or "griffin" (the GRIFFIN
     * feature head, drafting from the target's hidden states; needs
     * specula.griffin.location). Unset: "model" with a draft, "griffin" with a feature
     * head alone, "ngram" without either.
     */
    private String proposer;

    /** Prompt lookup: the shortest run of last tokens that counts as a match, 1 to 64. */
    private int ngramMin = PromptLookup.DEFAULT.minNgram();

    /**
     * Prompt lookup: the longest run of last tokens searched for (longer matches win),
     * ngram-min to 64.
     */
    private int ngramMax = PromptLookup.DEFAULT.maxNgram();

    /**
     * Shape of the proposals of the draft model or the feature head: "chain", or "tree"
     * (EAGLE-2's dynamic tree, verified in one target call; needs the target's and the
     * draft's packed graphs, model_packed.onnx, which the unpadded batch path loads; a
     * feature head's graph is packed). The depth is the policy's draft length.
     */
    private String draftShape = "chain";

    /**
     * Tree nodes one target call verifies: "auto" (chosen each round from the target's
     * measured cost and the nodes' expected acceptance) or 1 to 64.
     */
    private String treeNodes = "auto";

    /**
     * Tree width: children proposed per expanded node, and nodes expanded per level, 1 to
     * 8.
     */
    private int treeWidth = TreeShape.DEFAULT.width();

    public String getDraftShape() {
        return draftShape;
    }

    public void setDraftShape(String draftShape) {
        this.draftShape = draftShape;
    }

    public String getTreeNodes() {
        return treeNodes;
    }

    public void setTreeNodes(String treeNodes) {
        this.treeNodes = treeNodes;
    }

    public int getTreeWidth() {
        return treeWidth;
    }

    public void setTreeWidth(int treeWidth) {
        this.treeWidth = treeWidth;
    }

    public String getName() {
        return name;
    }

    public void setName(String name) {
        this.name = name;
    }

    public int getGamma() {
        return gamma;
    }

    public void setGamma(int gamma) {
        this.gamma = gamma;
    }

    public Map<String, String> getOptions() {
        return options;
    }

    public String getProposer() {
        return proposer;
    }

    public void setProposer(String proposer) {
        this.proposer = proposer;
    }

    public int getNgramMin() {
        return ngramMin;
    }

    public void setNgramMin(int ngramMin) {
        this.ngramMin = ngramMin;
    }

    public int getNgramMax() {
        return ngramMax;
    }

    public void setNgramMax(int ngramMax) {
        this.ngramMax = ngramMax;
    }

    public void setOptions(Map<String, String> options) {
        this.options = options;
    }

    @Override
    public void afterPropertiesSet() {
        String prefix = CONFIG_PREFIX + ".";
        if (name == null || name.isBlank()) {
            throw PropertyChecks.invalid(prefix + "name", name,
                    "a policy name, one of " + String.join(", ", SpeculationPolicies.names()));
        }
        if (name.indexOf(':') >= 0) {
            throw PropertyChecks.invalid(prefix + "name", name,
                    "a policy name without ':gamma' (set the draft length with " + prefix + "gamma), one of "
                            + String.join(", ", SpeculationPolicies.names()));
        }
        SpeculationPolicies.requireKnown(name);
        PropertyChecks.requireRange(prefix + "gamma", gamma, gamma, 1, FixedPolicy.MAX_GAMMA,
                "an integer from 1 to " + FixedPolicy.MAX_GAMMA);
        proposerKind();
        PropertyChecks.requireRange(prefix + "ngram-min", ngramMin, ngramMin, 1, 64, "an integer from 1 to 64");
        PropertyChecks.requireRange(prefix + "ngram-max", ngramMax, ngramMax, ngramMin, 64,
                "an integer from " + prefix + "ngram-min (" + ngramMin + ") to 64");
        tree();
    }

    /**
     * {@link #draftShape} and the tree's settings; null for chains.
     */
    TreeShape tree() {
        String prefix = CONFIG_PREFIX + ".";
        String shape = draftShape == null ? "" : draftShape.trim().toLowerCase(java.util.Locale.ROOT);
        if (shape.equals("chain")) {
            return null;
        }
        if (!shape.equals("tree")) {
            throw PropertyChecks.invalid(prefix + "draft-shape", draftShape, "chain or tree");
        }
        PropertyChecks.requireRange(prefix + "tree-width", treeWidth, treeWidth, 1, TreeShape.MAX_WIDTH,
                "an integer from 1 to " + TreeShape.MAX_WIDTH);
        int nodes;
        try {
            nodes = TreeShape.parseNodes(treeNodes, prefix + "tree-nodes");
        }
        catch (InvalidRequestException ex) {
            throw PropertyChecks.invalid(prefix + "tree-nodes", treeNodes,
                    "auto or an integer from 1 to " + TreeShape.MAX_NODES);
        }
        ProposerKind kind = proposerKind();
        if (kind != null && !kind.usesDrafter()) {
            throw PropertyChecks.invalid(prefix + "draft-shape", draftShape,
                    "chain: a tree shapes the proposals of the draft model or the feature head, and " + prefix
                            + "proposer is '" + kind + "'");
        }
        return new TreeShape(treeWidth, nodes);
    }

    /** These properties as the service takes them. */
    public PolicySettings toSettings() {
        return PolicySettings.builder()
            .name(name.trim())
            .gamma(gamma)
            .options(options)
            .proposer(proposerKind())
            .promptLookup(new PromptLookup(ngramMin, ngramMax))
            .tree(tree())
            .build();
    }

    /**
     * {@link #proposer} parsed; null when unset. {@code prediction} is refused: only a
     * request that carries a prediction can use it, so it cannot be every request's
     * default.
     */
    ProposerKind proposerKind() {
        if (proposer == null || proposer.isBlank()) {
            return null;
        }
        String allowed = "one of model, ngram, model+ngram, suffix, model+suffix, griffin (prediction is chosen "
                + "by the requests that carry one)";
        ProposerKind kind;
        try {
            kind = ProposerKind.parse(proposer, CONFIG_PREFIX + ".proposer");
        }
        catch (InvalidRequestException ex) {
            throw PropertyChecks.invalid(CONFIG_PREFIX + ".proposer", proposer, allowed);
        }
        if (kind == ProposerKind.PREDICTION) {
            throw PropertyChecks.invalid(CONFIG_PREFIX + ".proposer", proposer, allowed);
        }
        return kind;
    }

}
