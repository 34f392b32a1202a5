using ScottPlot;

namespace Peft.Cli.Reporting;

/// <summary>A PNG with the training loss of each method (left) and its test accuracy per epoch (right).</summary>
public static class TrainingChart
{
    /// <summary>Writes the chart to <paramref name="path"/>.</summary>
    public static void Save(IReadOnlyList<MethodResult> results, string path)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        var loss = multiplot.GetPlot(0);
        var accuracy = multiplot.GetPlot(1);
        foreach (var result in results)
        {
            var steps = result.Training.StepLosses;
            if (steps.Count > 0)
            {
                var line = loss.Add.Scatter(Enumerable.Range(1, steps.Count).Select(i => (double)i).ToArray(), Smooth(steps));
                line.LegendText = result.Method;
                line.MarkerSize = 0;
            }
            var epochs = result.Training.Evaluations;
            if (epochs.Count > 0)
            {
                var points = accuracy.Add.Scatter(Enumerable.Range(1, epochs.Count).Select(i => (double)i).ToArray(), epochs.Select(e => e.Accuracy * 100).ToArray());
                points.LegendText = result.Method;
            }
        }
        loss.Title("Training loss (moving average of 5 steps)");
        loss.XLabel("optimizer step");
        loss.YLabel("loss");
        loss.ShowLegend();
        accuracy.Title("Test accuracy after each epoch");
        accuracy.XLabel("epoch");
        accuracy.YLabel("accuracy (%)");
        accuracy.ShowLegend();
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        multiplot.SavePng(path, 1200, 450);
    }

    private static double[] Smooth(IReadOnlyList<double> values)
    {
        var smoothed = new double[values.Count];
        for (int i = 0; i < values.Count; i++)
        {
            var from = Math.Max(0, i - 4);
            // Steps skipped for a non-finite loss (--skip-nonfinite-steps) leave no mark on the curve.
            var window = values.Skip(from).Take(i - from + 1).Where(double.IsFinite).ToList();
            smoothed[i] = window.Count > 0 ? window.Average() : double.NaN;
        }
        return smoothed;
    }
}
