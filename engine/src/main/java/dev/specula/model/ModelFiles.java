package dev.specula.model;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The files of one exported decoder, in the layout of docs/models.md. <pre>
 * model.onnx              the graph (Optimum text-generation-with-past layout); weights may sit beside it
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
     * Resolves a model location: a directory holding {@code model.onnx}, or the path of
     * an {@code .onnx} file.
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
            model = directory.resolve(MODEL_FILE);
        }
        else {
            model = absolute;
            directory = absolute.getParent();
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
