# weft, Tokio, Go, uvloop: how many times faster than CPython asyncio (log scale; asyncio = 1).
# gnuplot -e "datafile='...'; outfile='...'; term='pngcairo|png|svg'; n=NCOLS; title_machine='...'" bars.gp
# datafile: header row `benchmark "col 1" "col 2" ...`, then `"name" x1 x2 ...`.
if (term eq 'svg') {
    set terminal svg size 1400, 560 dynamic font 'sans,11' background rgb 'white'
} else {
    eval sprintf("set terminal %s size 1400, 560 font 'sans,10'", term)
}
set output outfile
set title sprintf("Speed relative to CPython asyncio (higher is better; log scale) - %s", title_machine) noenhanced
set style data histograms
set style histogram clustered gap 1.5
set style fill solid 0.85 border rgb '#333333'
set boxwidth 0.9
set logscale y 10
set yrange [0.1:*]
set grid ytics lc rgb '#dddddd'
set ylabel 'times faster than asyncio'
set xtics rotate by -30 noenhanced
set key outside right top noenhanced
set arrow from graph 0, first 1 to graph 1, first 1 nohead lc rgb '#444444' dt 2
array colors[8] = ['#8c8c8c', '#bcbd22', '#1f77b4', '#d62728', '#2ca02c', '#aec7e8', '#ff9896', '#98df8a']
plot for [i=2:n+1] datafile using i:xtic(1) title columnhead(i) lc rgb colors[(i-2)%8+1]
