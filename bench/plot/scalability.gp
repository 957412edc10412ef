# Throughput against the number of workers (weft loops, Tokio worker threads, Go GOMAXPROCS), one
# panel per benchmark.
# gnuplot -e "datafile='...'; outfile='...'; term='pngcairo|png|svg'; n=N; wmax=W; cores=C; names='a b c'; title_machine='...'" scalability.gp
# datafile: one block per benchmark (blank-line separated, in the order of `names`),
#   rows `workers weft_stealable weft_affine tokio go` in operations/s (NaN where not measured).
if (!exists('cores')) cores = wmax
cols = (n < 3) ? n : 3
rows = int(ceil(n / 3.0))
if (term eq 'svg') {
    set terminal svg size 1200, 330*rows dynamic font 'sans,11' background rgb 'white'
} else {
    eval sprintf("set terminal %s size 1200, %d font 'sans,10'", term, 330*rows)
}
set output outfile
set multiplot layout rows, cols title sprintf("throughput vs workers: weft, Tokio, Go (%s)", title_machine) font ',13'
set grid ytics lc rgb '#dddddd'
set xrange [0.7:wmax+0.3]
set xtics 1
set yrange [0:*]
set format y '%.1s%c'
set key outside below horizontal font ',8' samplen 2
set xlabel 'workers' offset 0, 0.5
set ylabel 'operations / s' offset 1.5, 0
set style line 1 lc rgb '#1f77b4' lw 2 pt 7 ps 1.2
set style line 2 lc rgb '#ff7f0e' lw 2 pt 5 ps 1.2
set style line 3 lc rgb '#999999' lw 1 dt 2
set style line 4 lc rgb '#d62728' lw 1.5 pt 9 ps 1.0 dt 4
set style line 5 lc rgb '#2ca02c' lw 1.5 pt 11 ps 1.0 dt 4
do for [i=0:n-1] {
    set title word(names, i+1) noenhanced
    stats datafile index i every ::0::0 using 2 nooutput
    base = STATS_max
    plot datafile index i using 1:2 with linespoints ls 1 title 'weft stealable (weft\_spawn)', \
         '' index i using 1:3 with linespoints ls 2 title 'weft loop-affine (weft\_create\_task)', \
         '' index i using 1:4 with linespoints ls 4 title 'Tokio', \
         '' index i using 1:5 with linespoints ls 5 title 'Go', \
         (x >= 1 && x <= cores ? base * x : 1/0) with lines ls 3 title 'weft linear from 1 worker (up to the cores)'
}
unset multiplot
