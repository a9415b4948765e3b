package dev.specula.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The files of one exported decoder, in the layout of docs/models.md. <pre>
 * model.onnx              the graph (Optimum text-generation-with-past layout); weights may sit beside it;
 *                         or onnx/model.onnx (onnx-community's layout, with variants such as
 *                         onnx/model_fp16.onnx and onnx/model_q4.onnx: point at one by its path)
 * model.onnx_data         optional external weights (models over 2 GB, or weights shared by two graphs)
 * config.json             architecture: model_type, vocab_size, max_position_embeddings / n_positions
 * generation_config.json  optional: eos_token_id, bos_token_id
 * tokenizer.json          Hugging Face tokenizers file
 * tokenizer_config.json   optional: chat_template, bos/eos tokens
 * chat_template.jinja     optional: chat template (transformers 5 writes it here)
 * </pre>
 */
public record ModelFiles(Path directory, Path model, Path config, Optional<Path> generationConfig, Path tokenizer,
        Optional<Path> tokenizerConfig, Optional<Path> chatTemplate) {

    static final String MODEL_FILE = "model.onnx";

    /**
     * onnx-community's and Optimum's hub layout keeps the graphs in this subdirectory.
     */
    static final String GRAPH_DIRECTORY = "onnx";

    /**
     * Resolves a model location: a directory holding {@code model.onnx} or
     * {@code onnx/model.onnx}, or the path of an {@code .onnx} file (whose config and
     * tokenizer sit beside it, or one level up when it lies in {@code onnx/}).
     * @throws ModelLoadException naming the path when a required file is missing or
     * unreadable
     */
    static ModelFiles resolve(Path location) {
        Path absolute = location.toAbsolutePath().normalize();
        if (!Files.exists(absolute)) {
            throw new ModelLoadException(absolute, "Model location " + absolute
                    + " does not exist: point it at a directory exported by `python -m specula_tools export` (see docs/models.md)");
        }
        Path model;
        Path directory;
        if (Files.isDirectory(absolute)) {
            directory = absolute;
            model = graphIn(directory);
        }
        else {
            model = absolute;
            directory = sideFilesDirectory(absolute);
        }
        require(model, "the ONNX graph");
        Path config = require(directory.resolve("config.json"), "the model's config.json");
        Path tokenizer = require(directory.resolve("tokenizer.json"), "the tokenizer (tokenizer.json)");
        return new ModelFiles(directory, model, config, optional(directory.resolve("generation_config.json")),
                tokenizer, optional(directory.resolve("tokenizer_config.json")),
                optional(directory.resolve("chat_template.jinja")));
    }

    /**
     * {@link Decoder#kvIdentity()} of these files: the graph's path, and size and
     * modification time of it and its weights.
     */
    String kvIdentity() {
        StringBuilder identity = new StringBuilder(model.toString());
        // external weights: the graph's own, or model.onnx_data that a second graph
        // (model_packed.onnx) shares
        Set<Path> weights = new LinkedHashSet<>(List.of(model, model.resolveSibling(model.getFileName() + "_data"),
                model.resolveSibling(MODEL_FILE + "_data")));
        for (Path file : weights) {
            try {
                if (Files.exists(file)) {
                    identity.append('|')
                        .append(Files.size(file))
                        .append('|')
                        .append(Files.getLastModifiedTime(file).toMillis());
                }
            }
            catch (IOException ex) {
                // unreadable metadata: the path alone identifies the model
                identity.append("|?");
            }
        }
        return identity.toString();
    }

    /**
     * {@code model.onnx}, else {@code onnx/model.onnx}; several other graphs: which one?
     */
    private static Path graphIn(Path directory) {
        Path own = directory.resolve(MODEL_FILE);
        Path graphs = directory.resolve(GRAPH_DIRECTORY);
        if (Files.isRegularFile(own) || !Files.isDirectory(graphs)) {
            return own;
        }
        Path hub = graphs.resolve(MODEL_FILE);
        if (Files.isRegularFile(hub)) {
            return hub;
        }
        List<String> candidates;
        try (Stream<Path> files = Files.list(graphs)) {
            candidates = files.map((file) -> file.getFileName().toString())
                .filter((file) -> file.endsWith(".onnx"))
                .sorted()
                .map((file) -> GRAPH_DIRECTORY + "/" + file)
                .toList();
        }
        catch (IOException ex) {
            throw new ModelLoadException(graphs, "Cannot list " + graphs + ": " + ex.getMessage());
        }
        if (candidates.isEmpty()) {
            return own;
        }
        throw new ModelLoadException(directory,
                directory + " has no model.onnx but " + candidates.size() + " graphs: " + String.join(", ", candidates)
                        + ". Choose one: point the location at its path, or name it with the model's `file` property"
                        + " (specula.target.file / specula.draft.file), e.g. " + candidates.get(0));
    }

    /**
     * The graph's directory, or its parent for a graph in {@code onnx/} without a config
     * beside it.
     */
    private static Path sideFilesDirectory(Path graph) {
        Path directory = graph.getParent();
        if (directory.getFileName() != null && GRAPH_DIRECTORY.equals(directory.getFileName().toString())
                && !Files.isRegularFile(directory.resolve("config.json"))
                && Files.isRegularFile(directory.getParent().resolve("config.json"))) {
            return directory.getParent();
        }
        return directory;
    }

    private static Path require(Path file, String what) {
        if (!Files.isRegularFile(file)) {
            throw new ModelLoadException(file, "Missing " + what + ": " + file
                    + " does not exist; export the model with `python -m specula_tools export` (docs/models.md lists the files)");
        }
        if (!Files.isReadable(file)) {
            throw new ModelLoadException(file,
                    "Cannot read " + what + ": " + file + " is not readable by this process");
        }
        return file;
    }

    private static Optional<Path> optional(Path file) {
        return Files.isRegularFile(file) ? Optional.of(file) : Optional.empty();
    }
}
