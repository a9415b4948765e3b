package dev.specula.cli;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

import org.jspecify.annotations.Nullable;

import dev.specula.proposer.TreeShape;
import dev.specula.request.InvalidRequestException;

/**
 * The draft model's proposal shape: {@code --draft-shape chain|tree},
 * {@code --tree-nodes N|auto} (auto: chosen each round from the target's measured cost),
 * {@code --tree-width K} (children per expanded node). Bench takes lists
 * ({@code --draft-shape chain,tree --tree-nodes auto,8,16 --tree-width 2,3}), each shape
 * one run. A tree needs both models' packed graphs (model_packed.onnx): with a tree asked
 * for, the commands load those, for every run.
 */
final class TreeOptions {

    static final Set<String> OPTIONS = Set.of("draft-shape", "tree-nodes", "tree-width");

    private TreeOptions() {
    }

    /** {@code --draft-shape} etc. for one generation; null: a chain. */
    static @Nullable TreeShape shape(Arguments arguments) {
        List<@Nullable TreeShape> shapes = shapes(arguments);
        if (shapes.size() != 1) {
            throw new CliException("--draft-shape, --tree-nodes and --tree-width take one value each here");
        }
        return shapes.get(0);
    }

    /**
     * Every shape asked for: chain (null) and each tree of each nodes × width; a chain
     * alone without {@code --draft-shape}.
     */
    static List<@Nullable TreeShape> shapes(Arguments arguments) {
        List<@Nullable TreeShape> shapes = new ArrayList<>();
        for (String kind : values(arguments, "draft-shape", "chain")) {
            switch (kind) {
                case "chain" -> shapes.add(null);
                case "tree" -> {
                    for (String width : values(arguments, "tree-width", Integer.toString(TreeShape.DEFAULT.width()))) {
                        for (String nodes : values(arguments, "tree-nodes", "auto")) {
                            shapes.add(tree(width, nodes));
                        }
                    }
                }
                default -> throw new CliException("--draft-shape must be chain or tree but was '" + kind + "'");
            }
        }
        if (!shapes.stream().anyMatch((shape) -> shape != null)
                && (arguments.has("tree-nodes") || arguments.has("tree-width"))) {
            throw new CliException("--tree-nodes and --tree-width shape trees: add --draft-shape tree");
        }
        return shapes;
    }

    /** Whether any shape asked for is a tree (the packed graphs are then loaded). */
    static boolean wantsTrees(Arguments arguments) {
        return shapes(arguments).stream().anyMatch((shape) -> shape != null);
    }

    private static TreeShape tree(String width, String nodes) {
        try {
            return new TreeShape(Integer.parseInt(width), TreeShape.parseNodes(nodes, "--tree-nodes"));
        }
        catch (NumberFormatException ex) {
            throw new CliException(
                    "--tree-width must be an integer in [1, " + TreeShape.MAX_WIDTH + "] but was '" + width + "'");
        }
        catch (InvalidRequestException ex) {
            throw new CliException(ex.getMessage().replace("tree width", "--tree-width"));
        }
    }

    private static List<String> values(Arguments arguments, String option, String fallback) {
        List<String> values = new ArrayList<>();
        for (String value : new LinkedHashSet<>(List.of(arguments.string(option, fallback).split(",")))) {
            if (!value.isBlank()) {
                values.add(value.trim().toLowerCase(java.util.Locale.ROOT));
            }
        }
        if (values.isEmpty()) {
            throw new CliException("--" + option + " needs a value");
        }
        return values;
    }

}
