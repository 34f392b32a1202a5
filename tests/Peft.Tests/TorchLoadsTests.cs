using TorchSharp;

namespace Peft.Tests;

/// <summary>The native library loads on this machine (the GLIBCXX weakening step ran) and computes.</summary>
public class TorchLoadsTests
{
    [Fact]
    public void MatrixProductIsComputed()
    {
        var a = torch.tensor(new float[] { 1, 2, 3, 4 }, [2, 2]);
        var product = a.matmul(a);
        Assert.Equal(new float[] { 7, 10, 15, 22 }, product.data<float>().ToArray());
    }
}
