package dev.specula.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.jspecify.annotations.Nullable;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

/**
 * {@code bench --chart OUT.png}: speedup over plain decoding as grouped bars, one group
 * per category, one bar per policy.
 */
final class BenchChart {

    private BenchChart() {
    }

    static void write(List<Map<String, @Nullable Object>> rows, Path file) {
        System.setProperty("java.awt.headless", "true");
        Set<String> categories = new LinkedHashSet<>();
        Set<String> policies = new LinkedHashSet<>();
        for (Map<String, @Nullable Object> row : rows) {
            categories.add((String) row.get("category"));
            policies.add((String) row.get("policy"));
        }
        List<String> categoryAxis = new ArrayList<>(categories);
        CategoryChart chart = new CategoryChartBuilder()
            .width(Math.max(900, 110 * categoryAxis.size() * Math.max(1, policies.size()) / 3))
            .height(520)
            .title("Speedup over plain decoding")
            .xAxisTitle("category")
            .yAxisTitle("tokens/s ÷ plain")
            .build();
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setAvailableSpaceFill(0.9);
        chart.getStyler().setOverlapped(false);
        chart.getStyler().setYAxisMin(0.0);
        for (String policy : policies) {
            List<Double> speedups = new ArrayList<>();
            for (String category : categoryAxis) {
                speedups.add(rows.stream()
                    .filter((row) -> policy.equals(row.get("policy")) && category.equals(row.get("category")))
                    .map((row) -> (Double) row.get("speedup_vs_plain"))
                    .filter((value) -> value != null)
                    .findFirst()
                    .orElse(0.0));
            }
            chart.addSeries(policy, categoryAxis, speedups);
        }
        try {
            BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        }
        catch (IOException ex) {
            throw new CliException("bench: cannot write chart " + file.toAbsolutePath() + ": " + ex.getMessage());
        }
    }

}
